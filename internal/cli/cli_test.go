package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func runMain(env map[string]string, args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	return out.String(), errb.String(), code
}

func TestMainUsageAndTasks(t *testing.T) {
	out, _, code := runMain(nil, "--help")
	if code != 0 || !strings.Contains(out, "standalone") || !strings.Contains(out, "cancel") {
		t.Errorf("--help: %d %q", code, out)
	}
	out, _, code = runMain(nil, "tasks")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 19 || lines[0] != "aggregated_transactions" || lines[6] != "per_agent_config_settings" || lines[18] != "top_traces" {
		t.Errorf("tasks: %d %v", code, lines)
	}
	_, errOut, code := runMain(nil, "nosuch")
	if code != 2 || !strings.Contains(errOut, `unknown command "nosuch"`) {
		t.Errorf("unknown command: %d %q", code, errOut)
	}
}

func TestConfigErrorsExitTwoOnOneLine(t *testing.T) {
	_, errOut, code := runMain(map[string]string{"APMTEL_INTERVAL": "soon", "APMTEL_OPT_IN": "maybe"}, "worker")
	if code != 2 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "APMTEL_INTERVAL") || !strings.Contains(errOut, "APMTEL_OPT_IN") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = runMain(nil, "run", "--task", "nosuch")
	if code != 2 || !strings.Contains(errOut, "unknown telemetry task nosuch") {
		t.Errorf("run --task nosuch: %d %q", code, errOut)
	}
	_, errOut, code = runMain(map[string]string{"APMTEL_REDIS_CA_CERT": "/nonexistent/ca.pem"}, "runs")
	if code != 2 || !strings.Contains(errOut, "APMTEL_REDIS_CA_CERT") {
		t.Errorf("missing Redis CA: %d %q", code, errOut)
	}
	_, errOut, code = runMain(map[string]string{"APMTEL_MONITOR_ADDR": "0.0.0.0:0"}, "monitor")
	if code != 2 || !strings.Contains(errOut, "APMTEL_MONITOR_TOKEN: required") {
		t.Errorf("monitor off loopback without token: %d %q", code, errOut)
	}
}

func TestMonitorAuth(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:8080": true, "localhost:1": true, "[::1]:8080": true, "0.0.0.0:8080": false, ":8080": false, "10.0.0.1:80": false} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v", addr, got)
		}
	}
	h := requireToken("s3cret", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	tests := []struct {
		name string
		set  func(r *http.Request)
		want int
	}{
		{"none", func(r *http.Request) {}, 401},
		{"wrong bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, 401},
		{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer s3cret") }, 204},
		{"basic", func(r *http.Request) { r.SetBasicAuth("ops", "s3cret") }, 204},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("GET", "/monitoring/", nil)
		tc.set(r)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, w.Code, tc.want)
		}
	}
}

func TestSchemaCheckFailsOnDrift(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/apm.json"
	_, _, code := runMain(nil, "schema", "check", "--fix", "--file", file)
	if code != 0 {
		t.Fatalf("--fix: %d", code)
	}
	if _, _, code := runMain(nil, "schema", "check", "--file", file); code != 0 {
		t.Fatalf("fresh file: %d", code)
	}
	// Drop one field from the stored file: the check names its path.
	b, _ := os.ReadFile(file)
	stale := strings.Replace(string(b), `"median": {`, `"p50": {`, 1)
	_ = os.WriteFile(file, []byte(stale), 0o644)
	_, errOut, code := runMain(nil, "schema", "check", "--file", file)
	if code != 1 || !strings.Contains(errOut, "missing in stored file: properties.top_traces.properties.median") ||
		!strings.Contains(errOut, "not in the schema: properties.top_traces.properties.p50") {
		t.Errorf("drift: %d %q", code, errOut)
	}
}
