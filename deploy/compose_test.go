package deploy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
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
	Entrypoint      []string          `json:"entrypoint"`
	Command         []string          `json:"command"`
	Secrets         []string          `json:"secrets"`
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
	Secrets  map[string]struct {
		File        string `json:"file"`
		Environment string `json:"environment"`
	} `json:"secrets"`
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
// ${VAR:?message} to "<required VAR>", as compose would without an .env.
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
	// The bootstrap password comes from the secret file, through the
	// entrypoint, not from the container's configuration.
	if _, ok := es.Environment["ELASTIC_PASSWORD"]; ok || !slices.Contains(es.Secrets, "elastic_password") ||
		!strings.Contains(strings.Join(es.Entrypoint, " "), `ELASTIC_PASSWORD="$$(cat /run/secrets/elastic_password)"`) {
		t.Errorf("elasticsearch: environment ELASTIC_PASSWORD set %v, secrets %v, entrypoint %q; want the password read from /run/secrets/elastic_password by the entrypoint",
			ok, es.Secrets, es.Entrypoint)
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
			if base, ok := strings.CutSuffix(k, "_FILE"); ok && secretOptions()[base] {
				continue
			}
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
			if s.Environment[cl+"_PASSWORD_FILE"] == "" && s.Environment[cl+"_API_KEY_FILE"] == "" {
				t.Errorf("%s has no credentials file for %s", name, cl)
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

// secretRef is where a service reads a compose secret.
var secretRef = regexp.MustCompile(`/run/secrets/([A-Za-z0-9_.-]+)`)

// Secrets are files: no service sets a secret-bearing variable (apmtel's
// Secret options, or any name with PASSWORD, TOKEN, API_KEY, SECRET, AUTH),
// each *_FILE names /run/secrets/<a secret the service lists>, apmtel's only
// for its Secret options, every /run/secrets path a command, entrypoint or
// healthcheck reads is one the service lists, nothing is interpolated into
// a command, and every top-level secret is a file under the secrets
// directory that some service uses.
func TestComposeSecretsAreFiles(t *testing.T) {
	c, raw := loadCompose(t)
	used := checkServiceSecrets(t, c)
	if len(c.Secrets) == 0 {
		t.Fatal("docker-compose.yml declares no secrets")
	}
	checkSecretFiles(t, c, used)
	secretName := regexp.MustCompile(secretNamePattern)
	for _, bad := range []string{"change-me", "changeme", "password123"} {
		if strings.Contains(raw, bad) {
			t.Errorf("docker-compose.yml contains %q", bad)
		}
	}
	// .env.example holds switches only; every variable it lists is one
	// docker-compose.yml uses, and the file requires none (`docker compose
	// up` needs no .env).
	ex, err := os.ReadFile("../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(ex), "\n") {
		k, _, ok := strings.Cut(line, "=")
		if ok && !strings.HasPrefix(k, "#") && k != "APMTEL_SECRETS_DIR" && secretName.MatchString(k) {
			t.Errorf(".env.example lists %s: secrets are files", k)
		}
		if ok && !strings.HasPrefix(k, "#") && !strings.Contains(raw, "${"+k) {
			t.Errorf(".env.example lists %s, which docker-compose.yml does not use", k)
		}
	}
	for _, v := range interpolation.FindAllStringSubmatch(raw, -1) {
		if v[2] == "?" {
			t.Errorf("docker-compose.yml requires %s: it must start without an .env", v[1])
		}
	}
	for file, want := range map[string][]string{"../.gitignore": {".env", "/secrets/"}, "../.dockerignore": {".env", ".git", ".run/", "data/", "secrets/"}} {
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
	// The setup script reads exactly the secrets its service lists.
	script, err := os.ReadFile("compose/es-setup.sh")
	if err != nil {
		t.Fatal(err)
	}
	var read []string
	for _, m := range regexp.MustCompile(`\$\(secret ([a-z_]+)\)`).FindAllStringSubmatch(string(script), -1) {
		read = append(read, m[1])
	}
	slices.Sort(read)
	listed := slices.Clone(c.Services["setup"].Secrets)
	slices.Sort(listed)
	if len(read) == 0 || !slices.Equal(read, listed) {
		t.Errorf("es-setup.sh reads secrets %v, the setup service lists %v", read, listed)
	}
}

// secretNamePattern matches a variable that names a secret.
const secretNamePattern = `PASSWORD|TOKEN|API_KEY|SECRET|AUTH`

// checkServiceSecrets checks the secrets of every service of c (see
// TestComposeSecretsAreFiles) and returns the secrets some service lists.
func checkServiceSecrets(t *testing.T, c composeFile) map[string]bool {
	t.Helper()
	secret, known := secretOptions(), knownOptions()
	secretName := regexp.MustCompile(secretNamePattern)
	used := map[string]bool{}
	for name, s := range c.Services {
		listed := map[string]bool{}
		for _, sec := range s.Secrets {
			if _, ok := c.Secrets[sec]; !ok {
				t.Errorf("%s lists secret %q, which the file does not declare", name, sec)
			}
			listed[sec] = true
			used[sec] = true
		}
		for k, v := range s.Environment {
			base, isFile := strings.CutSuffix(k, "_FILE")
			// APMTEL_CLUSTERS_FILE is a setting of its own, no secret's file.
			isFile = isFile && !known[k]
			switch {
			case isFile:
				m := secretRef.FindStringSubmatch(v)
				if m == nil || m[0] != v {
					t.Errorf("%s %s = %q, want /run/secrets/<name>", name, k, v)
				} else if !listed[m[1]] {
					t.Errorf("%s %s reads secret %q, which the service does not list in secrets: %v", name, k, m[1], s.Secrets)
				}
				if strings.HasPrefix(k, "APMTEL_") && !secret[base] {
					t.Errorf("%s sets %s, but %s is no secret option (apmtel reads *_FILE only for secrets)", name, k, base)
				}
			case secret[k] || secretName.MatchString(k):
				t.Errorf("%s sets %s in its environment: secrets must come from files (%s_FILE=/run/secrets/...)", name, k, k)
			}
		}
		var cmds []string
		cmds = append(cmds, s.Command...)
		cmds = append(cmds, s.Entrypoint...)
		if s.Healthcheck != nil {
			cmds = append(cmds, s.Healthcheck.Test...)
		}
		for _, arg := range cmds {
			if interpolation.MatchString(arg) {
				t.Errorf("%s: %q interpolates a variable into a command line", name, arg)
			}
			for _, m := range secretRef.FindAllStringSubmatch(arg, -1) {
				if !listed[m[1]] {
					t.Errorf("%s reads %s, which the service does not list in secrets: %v", name, m[0], s.Secrets)
				}
			}
		}
	}
	return used
}

// checkSecretFiles checks that every top-level secret of c is a file under
// the secrets directory that some service uses.
func checkSecretFiles(t *testing.T, c composeFile, used map[string]bool) {
	t.Helper()
	for sec, def := range c.Secrets {
		if want := "${APMTEL_SECRETS_DIR:-./secrets}/" + sec; def.File != want || def.Environment != "" {
			t.Errorf("secret %s: file %q, environment %q; want file %q", sec, def.File, def.Environment, want)
		}
		if !used[sec] {
			t.Errorf("secret %s is declared but no service lists it", sec)
		}
	}
}

// deploy/compose/secrets.sh, run into a temporary directory, creates every
// secret the compose file declares, as a random hex value (a value the setup
// script accepts), readable by the containers' users (0644) in a directory
// only the owner enters (0700), and keeps a file that exists.
func TestComposeSecretsScript(t *testing.T) {
	c, _ := loadCompose(t)
	dir := t.TempDir() + "/secrets"
	run := func() string {
		cmd := exec.Command("sh", "compose/secrets.sh")
		cmd.Env = append(os.Environ(), "APMTEL_SECRETS_DIR="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("secrets.sh: %v: %s", err, out)
		}
		return string(out)
	}
	run()
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("secrets directory: %v, mode %v; want 0700", err, fi.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	for sec := range c.Secrets {
		want = append(want, sec)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("secrets.sh created %v, docker-compose.yml declares %v", got, want)
	}
	values := map[string]string{}
	hex48 := regexp.MustCompile(`^[0-9a-f]{48}$`)
	for _, name := range got {
		b, err := os.ReadFile(dir + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(dir + "/" + name)
		if !hex48.Match(b) || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: %d bytes, mode %v; want 48 hex digits, mode 0644", name, len(b), fi.Mode().Perm())
		}
		for other, v := range values {
			if v == string(b) {
				t.Errorf("%s and %s hold the same value", name, other)
			}
		}
		values[name] = string(b)
	}
	// A second run keeps every value, and fills in one that went missing.
	if err := os.WriteFile(dir+"/redis_password", []byte("MyOwnRedisPassword1"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dir + "/monitor_token"); err != nil {
		t.Fatal(err)
	}
	out := run()
	for name, v := range values {
		b, _ := os.ReadFile(dir + "/" + name)
		switch name {
		case "redis_password":
			if string(b) != "MyOwnRedisPassword1" {
				t.Errorf("secrets.sh replaced an existing %s", name)
			}
			if fi, _ := os.Stat(dir + "/" + name); fi.Mode().Perm() != 0o644 {
				t.Errorf("secrets.sh left %s at mode %v, which apmtel's uid cannot read through the bind mount", name, fi.Mode().Perm())
			}
		case "monitor_token":
			if !hex48.Match(b) || string(b) == v {
				t.Errorf("the missing %s was not created anew: %d bytes", name, len(b))
			}
		default:
			if string(b) != v {
				t.Errorf("secrets.sh replaced an existing %s", name)
			}
		}
	}
	if !strings.Contains(out, "keeping "+dir+"/elastic_password") || !strings.Contains(out, "created "+dir+"/monitor_token") {
		t.Errorf("second run says %q", out)
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
	if f := monitor.Environment["APMTEL_MONITOR_TOKEN_FILE"]; f != "/run/secrets/monitor_token" || !slices.Contains(monitor.Secrets, "monitor_token") {
		t.Errorf("monitor token file %q, secrets %v; want /run/secrets/monitor_token from the monitor_token secret", f, monitor.Secrets)
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
