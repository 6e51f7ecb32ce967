package version

import (
	"runtime/debug"
	"testing"
)

func TestResolve(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.0",
		Main:      debug.Module{Path: "github.com/apmtel/apmtel", Version: "v0.3.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "deadbeef"},
			{Key: "vcs.time", Value: "2025-05-01T10:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	tests := []struct {
		name     string
		v, c, d  string
		bi       *debug.BuildInfo
		want     Info
		wantLine string
	}{
		{"ldflags win", "v1.2.3", "abc123", "2025-01-02T03:04:05Z", bi,
			Info{Version: "v1.2.3", Commit: "abc123", Date: "2025-01-02T03:04:05Z", GoVersion: "go1.26.0"},
			"apmtel v1.2.3 (commit abc123, built 2025-01-02T03:04:05Z, go1.26.0)"},
		{"build info fills the gaps", "", "", "", bi,
			Info{Version: "v0.3.0", Commit: "deadbeef", Date: "2025-05-01T10:00:00Z", GoVersion: "go1.26.0", Modified: true},
			"apmtel v0.3.0 (commit deadbeef-dirty, built 2025-05-01T10:00:00Z, go1.26.0)"},
		{"only version stamped", "v2.0.0", "", "", bi,
			Info{Version: "v2.0.0", Commit: "deadbeef", Date: "2025-05-01T10:00:00Z", GoVersion: "go1.26.0", Modified: true},
			"apmtel v2.0.0 (commit deadbeef-dirty, built 2025-05-01T10:00:00Z, go1.26.0)"},
		{"nothing known", "", "", "", &debug.BuildInfo{GoVersion: "go1.26.0"},
			Info{Version: "(devel)", Commit: "unknown", Date: "unknown", GoVersion: "go1.26.0"},
			"apmtel (devel) (commit unknown, built unknown, go1.26.0)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := resolve(tt.v, tt.c, tt.d, tt.bi)
			if got != tt.want {
				t.Errorf("resolve = %+v, want %+v", got, tt.want)
			}
			if got.String() != tt.wantLine {
				t.Errorf("String() = %q, want %q", got.String(), tt.wantLine)
			}
		})
	}
}

func TestGetHasGoVersion(t *testing.T) {
	if g := Get(); g.GoVersion == "" || g.Version == "" || g.Commit == "" {
		t.Errorf("Get() = %+v: every field must be filled", g)
	}
}
