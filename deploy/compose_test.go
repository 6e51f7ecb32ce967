package deploy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/apmtel/apmtel/internal/config"
)

type service struct {
	Image           string            `json:"image"`
	Command         []string          `json:"command"`
	Restart         string            `json:"restart"`
	Environment     map[string]string `json:"environment"`
	Volumes         []string          `json:"volumes"`
	Ports           []string          `json:"ports"`
	StopGracePeriod string            `json:"stop_grace_period"`
	ReadOnly        bool              `json:"read_only"`
	CapDrop         []string          `json:"cap_drop"`
	Healthcheck     *struct {
		Test    []string `json:"test"`
		Disable bool     `json:"disable"`
	} `json:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on"`
	Deploy struct {
		Replicas string `json:"replicas"`
	} `json:"deploy"`
}

type composeFile struct {
	Services map[string]service `json:"services"`
}

func loadCompose(t *testing.T) (composeFile, string) {
	t.Helper()
	b, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	// YAMLToJSON resolves the anchors and merge keys (<<) the file uses.
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(c.Services) == 0 {
		t.Fatal("docker-compose.yml has no services")
	}
	return c, string(b)
}

var interpolation = regexp.MustCompile(`\$\{([A-Z0-9_]+)(?::?([-?])([^}]*))?\}`)

// resolve expands compose's ${VAR:-default} to default and a required
// ${VAR:?message} to "<required VAR>", as compose would with an .env that
// sets only the required variables.
func resolve(s string) string {
	return interpolation.ReplaceAllStringFunc(s, func(m string) string {
		p := interpolation.FindStringSubmatch(m)
		switch p[2] {
		case "-":
			return p[3]
		case "?":
			return "<required " + p[1] + ">"
		}
		return ""
	})
}

// requiredVar matches a value that is nothing but a required variable.
var requiredVar = regexp.MustCompile(`^\$\{[A-Z0-9_]+:\?[^}]+\}$`)

func isApmtel(s service) bool { return s.Image == "apmtel:local" }

func secretOptions() map[string]bool {
	out := map[string]bool{}
	for _, o := range config.Options() {
		if o.Secret {
			out[o.Env] = true
		}
	}
	return out
}

func knownOptions() map[string]bool {
	out := map[string]bool{}
	for _, o := range config.Options() {
		out[o.Env] = true
	}
	return out
}

func TestComposeElasticsearchSecurityOn(t *testing.T) {
	c, _ := loadCompose(t)
	es, ok := c.Services["elasticsearch"]
	if !ok {
		t.Fatal("no elasticsearch service")
	}
	for k, want := range map[string]string{
		"xpack.security.enabled":                          "true",
		"xpack.security.http.ssl.enabled":                 "true",
		"xpack.security.transport.ssl.enabled":            "true",
		"xpack.security.http.ssl.certificate_authorities": "certs/ca/ca.crt",
	} {
		if got := es.Environment[k]; got != want {
			t.Errorf("elasticsearch %s = %q, want %q", k, got, want)
		}
	}
	if !requiredVar.MatchString(es.Environment["ELASTIC_PASSWORD"]) {
		t.Errorf("elasticsearch ELASTIC_PASSWORD = %q, want a required ${VAR:?...}", es.Environment["ELASTIC_PASSWORD"])
	}
	if d := es.DependsOn["setup"].Condition; d != "service_healthy" {
		t.Errorf("elasticsearch waits for setup with %q, want service_healthy (the certificates exist)", d)
	}
	// The setup service creates CA and node certificate with certutil and
	// the apmtel user; its script is mounted from the repository.
	setup := c.Services["setup"]
	var script string
	for _, v := range setup.Volumes {
		if host, _, ok := strings.Cut(v, ":"); ok && strings.HasPrefix(host, "./") {
			script = "../" + strings.TrimPrefix(host, "./")
		}
	}
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatalf("setup script %q: %v", script, err)
	}
	for _, want := range []string{"elasticsearch-certutil ca", "elasticsearch-certutil cert", "/_security/role/apmtel", "/_security/user/apmtel"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s does not run %q", script, want)
		}
	}
	for name, s := range c.Services {
		if v, ok := s.Environment["xpack.security.enabled"]; ok && v != "true" {
			t.Errorf("%s turns security off", name)
		}
	}
}

func TestComposeApmtelConnectsSecurely(t *testing.T) {
	c, _ := loadCompose(t)
	known := knownOptions()
	n := 0
	for name, s := range c.Services {
		if !isApmtel(s) {
			continue
		}
		n++
		for k := range s.Environment {
			if strings.HasPrefix(k, "APMTEL_") && !known[k] {
				t.Errorf("%s sets %s, which is no apmtel setting", name, k)
			}
		}
		for _, cl := range []string{"APMTEL_SOURCE", "APMTEL_TELEMETRY"} {
			if u := s.Environment[cl+"_URL"]; !strings.HasPrefix(u, "https://") {
				t.Errorf("%s %s_URL = %q, want https", name, cl, u)
			}
			ca := s.Environment[cl+"_CA_CERT"]
			mounted := false
			for _, v := range s.Volumes {
				parts := strings.Split(v, ":")
				if len(parts) >= 2 && ca != "" && strings.HasPrefix(ca, parts[1]+"/") {
					mounted = true
				}
			}
			if !mounted {
				t.Errorf("%s %s_CA_CERT = %q is not on a mounted volume %v", name, cl, ca, s.Volumes)
			}
			if s.Environment[cl+"_PASSWORD"] == "" && s.Environment[cl+"_API_KEY"] == "" {
				t.Errorf("%s has no credentials for %s", name, cl)
			}
			if s.Environment[cl+"_INSECURE"] != "" {
				t.Errorf("%s sets %s_INSECURE", name, cl)
			}
		}
		if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") {
			t.Errorf("%s: read_only %v, cap_drop %v; want a read-only root and no capabilities", name, s.ReadOnly, s.CapDrop)
		}
	}
	if n < 5 {
		t.Errorf("found %d apmtel services, want scheduler, worker, monitor, sample-data, telemetry-index", n)
	}
}

func TestComposeNoLiteralSecrets(t *testing.T) {
	c, raw := loadCompose(t)
	secret := secretOptions()
	secretName := regexp.MustCompile(`PASSWORD|TOKEN|API_KEY|SECRET|REDISCLI_AUTH`)
	for name, s := range c.Services {
		for k, v := range s.Environment {
			if (secret[k] || secretName.MatchString(k)) && !requiredVar.MatchString(v) {
				t.Errorf("%s %s = %q: secrets must be a required ${VAR:?...} from .env, no literal and no default", name, k, v)
			}
		}
		for _, arg := range s.Command {
			if strings.Contains(arg, "$") && !requiredVar.MatchString(arg) && !strings.Contains(arg, "$$") {
				t.Errorf("%s command argument %q interpolates something other than a required variable", name, arg)
			}
		}
	}
	for _, bad := range []string{"change-me", "changeme", "password123"} {
		if strings.Contains(raw, bad) {
			t.Errorf("docker-compose.yml contains %q", bad)
		}
	}
	// .env.example ships every secret empty; the real .env stays out of git
	// and out of the image.
	ex, err := os.ReadFile("../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(ex), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if ok && !strings.HasPrefix(k, "#") && secretName.MatchString(k) && v != "" {
			t.Errorf(".env.example sets %s", k)
		}
		if ok && !strings.HasPrefix(k, "#") && !strings.Contains(raw, "${"+k) {
			t.Errorf(".env.example lists %s, which docker-compose.yml does not use", k)
		}
	}
	for _, v := range interpolation.FindAllStringSubmatch(raw, -1) {
		if v[2] == "?" && !strings.Contains(string(ex), v[1]+"=") {
			t.Errorf("docker-compose.yml requires %s, which .env.example does not list", v[1])
		}
	}
	for file, want := range map[string][]string{"../.gitignore": {".env"}, "../.dockerignore": {".env", ".git", ".run/", "data/"}} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		for _, w := range want {
			if !slices.Contains(lines, w) {
				t.Errorf("%s does not list %s", file, w)
			}
		}
	}
}

func TestComposeHealthchecksAndOrder(t *testing.T) {
	c, _ := loadCompose(t)
	completed := map[string]bool{} // one-shot services something waits for
	for name, s := range c.Services {
		for dep, d := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
			}
			switch d.Condition {
			case "service_healthy":
				if h := c.Services[dep].Healthcheck; h == nil || h.Disable || len(h.Test) == 0 {
					t.Errorf("%s waits for %s to be healthy, which has no healthcheck", name, dep)
				}
			case "service_completed_successfully":
				completed[dep] = true
			default:
				t.Errorf("%s depends on %s with condition %q; want service_healthy or service_completed_successfully", name, dep, d.Condition)
			}
		}
	}
	for name, s := range c.Services {
		if isApmtel(s) && s.Restart == "no" {
			if !completed[name] {
				t.Errorf("one-shot %s: nothing waits for it to complete", name)
			}
			continue
		}
		h := s.Healthcheck
		if h == nil || h.Disable || len(h.Test) == 0 {
			t.Errorf("%s has no healthcheck", name)
			continue
		}
		if isApmtel(s) && !(len(h.Test) >= 3 && h.Test[0] == "CMD" && h.Test[1] == "/apmtel" && h.Test[2] == "healthcheck") {
			t.Errorf("%s healthcheck %v, want [CMD /apmtel healthcheck ...] (the image has no curl)", name, h.Test)
		}
	}
	// certs -> ES healthy -> setup done -> sample data + index -> scheduler, workers.
	want := map[string]string{
		"redis": "service_healthy", "elasticsearch": "service_healthy", "setup": "service_completed_successfully",
		"sample-data": "service_completed_successfully", "telemetry-index": "service_completed_successfully",
	}
	for _, name := range []string{"scheduler", "worker"} {
		s := c.Services[name]
		for dep, cond := range want {
			if got := s.DependsOn[dep].Condition; got != cond {
				t.Errorf("%s depends on %s with %q, want %q", name, dep, got, cond)
			}
		}
	}
	if got := c.Services["telemetry-index"].Command; !slices.Equal(got, []string{"telemetry-index", "setup"}) {
		t.Errorf("telemetry-index runs %v", got)
	}
}

func TestComposeMonitorWorkerAndPorts(t *testing.T) {
	c, _ := loadCompose(t)
	var monitor, worker *service
	for name, s := range c.Services {
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s publishes %q beyond loopback", name, p)
			}
		}
		if slices.Equal(s.Command, []string{"monitor"}) {
			monitor = &s
		}
		if slices.Equal(s.Command, []string{"worker"}) {
			worker = &s
		}
	}
	if monitor == nil || worker == nil {
		t.Fatal("no monitor or worker service")
	}
	if got := resolve(monitor.Environment["APMTEL_MONITOR_READ_ONLY"]); got != "true" {
		t.Errorf("monitor APMTEL_MONITOR_READ_ONLY resolves to %q without .env, want true", got)
	}
	if !requiredVar.MatchString(monitor.Environment["APMTEL_MONITOR_TOKEN"]) {
		t.Errorf("monitor token = %q, want a required variable", monitor.Environment["APMTEL_MONITOR_TOKEN"])
	}
	d, err := time.ParseDuration(worker.StopGracePeriod)
	if err != nil || d <= config.Default().Timing().ShutdownTimeout {
		t.Errorf("worker stop_grace_period %q (%v) must exceed config.Default().Timing().ShutdownTimeout %s", worker.StopGracePeriod, err, config.Default().Timing().ShutdownTimeout)
	}
	if r := resolve(worker.Deploy.Replicas); r == "" || r == "0" {
		t.Errorf("worker deploy.replicas %q resolves to %q", worker.Deploy.Replicas, r)
	}
	if worker.Environment["APMTEL_HTTP_ADDR"] == "" {
		t.Error("worker serves no health endpoint (APMTEL_HTTP_ADDR unset), so its healthcheck cannot pass")
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	var user string
	var expose []string
	for _, line := range strings.Split(df, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "USER" {
			user = f[1]
		}
		if len(f) >= 2 && f[0] == "EXPOSE" {
			expose = append(expose, f[1:]...)
		}
	}
	if user == "" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root") {
		t.Errorf("final USER = %q, want a non-root numeric user", user)
	}
	for _, p := range []string{"8080", "8081"} {
		if !slices.Contains(expose, p) {
			t.Errorf("EXPOSE %v lacks %s", expose, p)
		}
	}
	// Every -X target must be a string variable of internal/version, or the
	// linker ignores it silently.
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "../internal/version/version.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]bool{}
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.VAR {
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "string" {
					for _, n := range vs.Names {
						vars[n.Name] = true
					}
				}
			}
		}
	}
	xs := regexp.MustCompile(`-X github.com/apmtel/apmtel/internal/version\.(\w+)=`).FindAllStringSubmatch(df, -1)
	got := map[string]bool{}
	for _, x := range xs {
		got[x[1]] = true
		if !vars[x[1]] {
			t.Errorf("Dockerfile stamps version.%s, which internal/version does not declare as a string variable", x[1])
		}
	}
	for _, want := range []string{"version", "commit", "date"} {
		if !got[want] {
			t.Errorf("Dockerfile does not stamp version.%s", want)
		}
	}
}
