package deploy

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
)

// loadWithCompose loads docker-compose.yml with compose-go, the loader of
// Docker Compose itself: schema validation, interpolation, anchors and
// merges as `docker compose up` does them.
func loadWithCompose(t *testing.T, env []string) error {
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
	return err
}

func TestComposeSpecValid(t *testing.T) {
	// .env.example with its secrets filled in: the file is valid compose.
	b, err := os.ReadFile("../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if v == "" {
			v = "x" + strings.ToLower(k)
		}
		env = append(env, k+"="+v)
	}
	if err := loadWithCompose(t, env); err != nil {
		t.Fatalf("docker-compose.yml with .env.example filled in: %v", err)
	}
	// Without an .env, compose refuses to start and names every secret.
	err = loadWithCompose(t, nil)
	if err == nil {
		t.Fatal("docker-compose.yml loads without any secret set")
	}
	for _, v := range []string{"ELASTIC_PASSWORD", "APMTEL_ES_PASSWORD", "REDIS_PASSWORD", "APMTEL_MONITOR_TOKEN"} {
		if !strings.Contains(err.Error(), "required variable "+v+" is missing a value") {
			t.Errorf("without .env the error does not name %s: %v", v, err)
		}
	}
}
