package deploy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadWithCompose loads docker-compose.yml with compose-go, the loader of
// Docker Compose itself: schema validation, interpolation, anchors and
// merges as `docker compose up` does them.
func loadWithCompose(t *testing.T, env []string) (*types.Project, error) {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := strings.TrimSuffix(wd, "/deploy")
	opts, err := cli.NewProjectOptions([]string{root + "/docker-compose.yml"},
		cli.WithEnv(env), cli.WithName("apmtel"), cli.WithWorkingDirectory(root))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err == nil && len(p.Services) == 0 {
		t.Fatal("compose loaded no services")
	}
	return p, err
}

func TestComposeSpecValid(t *testing.T) {
	// Without any .env: the file is valid compose (it requires no variable),
	// and its secrets are the files under ./secrets.
	p, err := loadWithCompose(t, nil)
	if err != nil {
		t.Fatalf("docker-compose.yml without .env: %v", err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := strings.TrimSuffix(wd, "/deploy")
	for name, sec := range p.Secrets {
		if want := filepath.Join(root, "secrets", name); sec.File != want {
			t.Errorf("secret %s resolves to %q without .env, want %q", name, sec.File, want)
		}
	}
	// With .env.example's values and real secret files elsewhere: valid, the
	// secrets come from APMTEL_SECRETS_DIR, and what `docker compose config`
	// prints holds no secret value.
	b, err := os.ReadFile("../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var env []string
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if k == "APMTEL_SECRETS_DIR" {
			v = dir
		}
		env = append(env, k+"="+v)
	}
	values := map[string]string{}
	for name := range p.Secrets {
		values[name] = "Val" + strings.ReplaceAll(name, "_", "") + "0451"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(values[name]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err = loadWithCompose(t, env)
	if err != nil {
		t.Fatalf("docker-compose.yml with .env.example: %v", err)
	}
	for name, sec := range p.Secrets {
		if want := filepath.Join(dir, name); sec.File != want {
			t.Errorf("secret %s = %q with APMTEL_SECRETS_DIR=%s, want %q", name, sec.File, dir, want)
		}
	}
	out, err := p.MarshalYAML()
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range values {
		if strings.Contains(string(out), v) {
			t.Errorf("the resolved configuration contains the value of secret %s", name)
		}
	}
	// Every service that reads a secret file has it mounted: compose-go's
	// view of the services' secrets and *_FILE variables.
	for _, s := range p.Services {
		mounted := map[string]bool{}
		for _, ref := range s.Secrets {
			target := ref.Target
			if target == "" {
				target = ref.Source
			}
			if !filepath.IsAbs(target) {
				target = "/run/secrets/" + target
			}
			mounted[target] = true
		}
		for k, v := range s.Environment {
			if strings.HasSuffix(k, "_FILE") && (v == nil || !mounted[*v]) {
				t.Errorf("%s: %s is not a mounted secret (%v)", s.Name, k, s.Secrets)
			}
		}
	}
}
