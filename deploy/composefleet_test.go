package deploy

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	goyaml "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"

	"github.com/apmtel/apmtel/internal/fleet"
)

// clustersMount is where the compose services and the chart's pods find
// the clusters file.
const clustersMount = "/etc/apmtel/clusters.yml"

var (
	oneClusterLine = regexp.MustCompile(`#\s*one cluster\s*$`)
	fleetLine      = regexp.MustCompile(`^(\s*)#\s?(.*#\s*fleet\s*)$`)
)

// fleetVariant is docker-compose.yml switched to a fleet the way its header
// says: the lines ending in "# one cluster" deleted, those ending in
// "# fleet" uncommented.
func fleetVariant(raw string) string {
	var out []string
	for _, line := range strings.Split(raw, "\n") {
		switch {
		case oneClusterLine.MatchString(line):
		case fleetLine.MatchString(line):
			out = append(out, fleetLine.ReplaceAllString(line, "$1$2"))
		default:
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// exampleEntry is the part of a clusters file entry the deploy checks read.
type exampleEntry struct {
	Name         string `yaml:"name"`
	APIKeyFile   string `yaml:"api_key_file"`
	PasswordFile string `yaml:"password_file"`
	CACert       string `yaml:"ca_cert"`
}

// loadClustersExample parses a clusters file with apmtel's own parser (it
// must be well formed) and returns its entries.
func loadClustersExample(t *testing.T, path string, data []byte) []exampleEntry {
	t.Helper()
	set, err := fleet.Parse(path, data)
	if err != nil {
		t.Fatalf("%s is refused by apmtel: %v", path, err)
	}
	var doc struct {
		Clusters []exampleEntry `yaml:"clusters"`
	}
	if err := goyaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Clusters) != set.Len() || set.Len() < 2 {
		t.Fatalf("%s: %d entries, apmtel sees %d clusters; want at least 2", path, len(doc.Clusters), set.Len())
	}
	return doc.Clusters
}

// mountedAt returns the host side of the volume s mounts at target.
func mountedAt(s service, target string) (string, bool) {
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == target {
			return parts[0], true
		}
	}
	return "", false
}

// onVolume reports whether path lies on a volume s mounts.
func onVolume(s service, path string) bool {
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && strings.HasPrefix(path, strings.TrimSuffix(parts[1], "/")+"/") {
			return true
		}
	}
	return false
}

// The default compose file is one cluster; its fleet variant (the header's
// recipe) mounts deploy/compose/clusters.example.yml into the scheduler,
// the workers and the monitor, names it by APMTEL_CLUSTERS_FILE without any
// APMTEL_SOURCE_* setting beside it, and every secret file the example
// names is a compose secret those services list, declared as a file under
// the secrets directory; every CA is on a mounted volume. Both variants
// are valid compose.
func TestComposeFleet(t *testing.T) {
	base, raw := loadCompose(t)
	for name, s := range base.Services {
		if _, ok := s.Environment["APMTEL_CLUSTERS_FILE"]; ok {
			t.Errorf("%s sets APMTEL_CLUSTERS_FILE in the default (single-cluster) compose file", name)
		}
		if _, ok := mountedAt(s, clustersMount); ok {
			t.Errorf("%s mounts a clusters file in the default compose file", name)
		}
	}
	variant := fleetVariant(raw)
	if variant == raw {
		t.Fatal("docker-compose.yml has no lines marked \"# fleet\"")
	}
	var c composeFile
	if err := yaml.Unmarshal([]byte(variant), &c); err != nil {
		t.Fatalf("fleet variant of docker-compose.yml: %v", err)
	}
	used := checkServiceSecrets(t, c)
	checkSecretFiles(t, c, used)
	if _, err := loadComposeFile(t, variant); err != nil {
		t.Fatalf("fleet variant is no valid compose file: %v", err)
	}

	known := knownOptions()
	if !known["APMTEL_CLUSTERS_FILE"] {
		t.Fatal("APMTEL_CLUSTERS_FILE is no apmtel setting (config.Options)")
	}
	var entries []exampleEntry
	n := 0
	for name, s := range c.Services {
		if len(s.Command) != 1 || !slices.Contains([]string{"scheduler", "worker", "monitor"}, s.Command[0]) {
			continue
		}
		n++
		if got := s.Environment["APMTEL_CLUSTERS_FILE"]; got != clustersMount {
			t.Errorf("%s APMTEL_CLUSTERS_FILE = %q, want %s", name, got, clustersMount)
		}
		for k := range s.Environment {
			if strings.HasPrefix(k, "APMTEL_SOURCE_") {
				t.Errorf("%s sets %s beside APMTEL_CLUSTERS_FILE (a configuration error)", name, k)
			}
		}
		host, ok := mountedAt(s, clustersMount)
		if !ok {
			t.Errorf("%s does not mount the clusters file at %s: %v", name, clustersMount, s.Volumes)
			continue
		}
		if host != "./deploy/compose/clusters.example.yml" {
			t.Errorf("%s mounts %s, want the example ./deploy/compose/clusters.example.yml", name, host)
		}
		data, err := os.ReadFile(filepath.Join("..", host))
		if err != nil {
			t.Fatal(err)
		}
		entries = loadClustersExample(t, host, data)
		listed := map[string]bool{}
		for _, sec := range s.Secrets {
			listed[sec] = true
		}
		for _, e := range entries {
			for what, p := range map[string]string{"api_key_file": e.APIKeyFile, "password_file": e.PasswordFile} {
				if p == "" {
					continue
				}
				m := secretRef.FindStringSubmatch(p)
				if m == nil || m[0] != p {
					t.Errorf("cluster %s %s = %q, want /run/secrets/<name>", e.Name, what, p)
				} else if !listed[m[1]] {
					t.Errorf("cluster %s %s = %q: %s does not list secret %q (%v)", e.Name, what, p, name, m[1], s.Secrets)
				}
			}
			if e.APIKeyFile == "" && e.PasswordFile == "" {
				t.Errorf("cluster %s has no secret file", e.Name)
			}
			if e.CACert != "" && !onVolume(s, e.CACert) {
				t.Errorf("cluster %s ca_cert %s is on no volume %s mounts", e.Name, e.CACert, name)
			}
		}
	}
	if n != 3 {
		t.Errorf("found %d scheduler/worker/monitor services in the fleet variant, want 3", n)
	}
	// Each cluster's secret other than the stack's own is one the fleet
	// variant alone declares: the default compose file starts without it.
	for _, e := range entries {
		for _, p := range []string{e.APIKeyFile, e.PasswordFile} {
			if m := secretRef.FindStringSubmatch(p); m != nil {
				if _, ok := c.Secrets[m[1]]; !ok {
					t.Errorf("cluster %s reads secret %s, which the fleet variant does not declare", e.Name, m[1])
				}
			}
		}
	}
}

// loadComposeFile loads content as docker-compose.yml of the repository
// with compose-go (the loader of Docker Compose), without an .env.
func loadComposeFile(t *testing.T, content string) (any, error) {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := strings.TrimSuffix(wd, "/deploy")
	f := filepath.Join(t.TempDir(), "docker-compose.yml")
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{f}, cli.WithName("apmtel"), cli.WithWorkingDirectory(root))
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}
