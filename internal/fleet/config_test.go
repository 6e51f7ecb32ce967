package fleet_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/fleet"
)

func TestFromConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "clusters.yaml")
	if err := os.WriteFile(file, []byte("clusters:\n  - name: a\n    urls: [\"http://127.0.0.1:1\"]\n  - name: b\n    urls: [\"http://127.0.0.1:2\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	load := func(t *testing.T, env map[string]string) (config.Config, error) {
		return config.Load(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	}
	tests := []struct {
		name    string
		env     map[string]string
		origin  fleet.Origin
		names   []string
		wantErr string
	}{
		{"file", map[string]string{"APMTEL_CLUSTERS_FILE": file}, fleet.OriginFile, []string{"a", "b"}, ""},
		{"source", map[string]string{"APMTEL_SOURCE_URL": "http://127.0.0.1:9200", "APMTEL_SOURCE_NAME": "eu"}, fleet.OriginSource, []string{"eu"}, ""},
		{"default name", map[string]string{"APMTEL_SOURCE_URL": "http://127.0.0.1:9200"}, fleet.OriginSource, []string{"default"}, ""},
		{"insecure=false is no source setting", map[string]string{"APMTEL_CLUSTERS_FILE": file, "APMTEL_SOURCE_INSECURE": "false"}, fleet.OriginFile, []string{"a", "b"}, ""},
		{"both", map[string]string{"APMTEL_CLUSTERS_FILE": file, "APMTEL_SOURCE_URL": "http://127.0.0.1:9200"}, "", nil, "APMTEL_CLUSTERS_FILE and APMTEL_SOURCE_URL"},
		{"secret beside the file", map[string]string{"APMTEL_CLUSTERS_FILE": file, "APMTEL_SOURCE_API_KEY": "c2VjcmV0"}, "", nil, "APMTEL_CLUSTERS_FILE and APMTEL_SOURCE_API_KEY"},
		{"missing file", map[string]string{"APMTEL_CLUSTERS_FILE": filepath.Join(dir, "nope.yaml")}, "", nil, "APMTEL_CLUSTERS_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := load(t, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			src, err := fleet.FromConfig(cfg, zerolog.Nop())
			if tt.wantErr != "" {
				var ue *config.UsageError
				if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want a usage error with %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "c2VjcmV0") {
					t.Fatalf("error echoes the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s := src.Current()
			if s.Origin() != tt.origin || strings.Join(s.Names(), ",") != strings.Join(tt.names, ",") {
				t.Fatalf("set = %s %v, want %s %v", s.Origin(), s.Names(), tt.origin, tt.names)
			}
		})
	}
}
