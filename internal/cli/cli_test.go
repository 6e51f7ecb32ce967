package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/testenv"
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
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		lines = append(lines, strings.Fields(l)[0])
	}
	// The 19 data tasks in Kibana's order, then the behavioural ones.
	if code != 0 || len(lines) != 21 || lines[0] != "aggregated_transactions" || lines[6] != "per_agent_config_settings" || lines[18] != "top_traces" ||
		lines[19] != "application_usage" || lines[20] != "ui_counters" {
		t.Errorf("tasks: %d %v", code, lines)
	}
	_, errOut, code := runMain(nil, "nosuch")
	if code != 2 || !strings.Contains(errOut, `unknown command "nosuch"`) {
		t.Errorf("unknown command: %d %q", code, errOut)
	}
}

func TestConfigErrorsExitTwoOnOneLine(t *testing.T) {
	_, errOut, code := runMain(map[string]string{"APMTEL_INTERVAL": "soon", "APMTEL_OPT_IN": "maybe"}, "standalone")
	if code != 2 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "APMTEL_INTERVAL") || !strings.Contains(errOut, "APMTEL_OPT_IN") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = runMain(nil, "run", "--task", "nosuch")
	if code != 2 || !strings.Contains(errOut, "unknown telemetry task nosuch") || strings.Count(errOut, "\n") != 1 {
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

// The monitor on loopback, against real Redis: a web page in the operator's
// browser can neither change anything (cross-origin POST, any content type)
// nor reach it under another host name (DNS rebinding); read-only is the
// default; a writable monitor accepts same-origin changes only.
func TestMonitorRefusesCrossOriginAndRebinding(t *testing.T) {
	for _, readOnly := range []bool{true, false} {
		t.Run(fmt.Sprintf("read-only=%v", readOnly), func(t *testing.T) {
			_, db := testenv.RedisDB(t)
			cfg := config.Default()
			cfg.RedisAddr, cfg.RedisDB, cfg.MonitorAddr, cfg.MonitorReadOnly = testenv.RedisAddr(t), db, "127.0.0.1:0", readOnly
			ctx, cancel := context.WithCancel(context.Background())
			ready := make(chan string, 1)
			done := make(chan error, 1)
			go func() { done <- serveMonitor(ctx, cfg, testRuntime(t, cfg), zerolog.Nop(), ready) }()
			addr := <-ready
			defer func() { cancel(); <-done }()
			do := func(method, host, path string, hdr map[string]string) int {
				req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader("x"))
				req.Host = host
				for k, v := range hdr {
					req.Header.Set(k, v)
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				return res.StatusCode
			}
			pause := "/monitoring/api/queues/telemetry:pause"
			sameOrigin := 403
			if !readOnly {
				sameOrigin = 204
			}
			for _, tc := range []struct {
				name, method, host, path string
				hdr                      map[string]string
				want                     int
			}{
				{"health", "GET", addr, "/healthz", nil, 200},
				{"cross-origin text/plain POST", "POST", addr, pause, map[string]string{"Origin": "http://evil.example", "Content-Type": "text/plain"}, 403},
				{"POST without Origin", "POST", addr, pause, nil, 403},
				{"rebinding host", "GET", "evil.example:" + strings.Split(addr, ":")[1], "/monitoring/api/queues", nil, 421},
				{"same-origin POST", "POST", addr, pause, map[string]string{"Origin": "http://" + addr}, sameOrigin},
			} {
				if got := do(tc.method, tc.host, tc.path, tc.hdr); got != tc.want {
					t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
				}
			}
		})
	}
}

func TestBlankMonitorTokenRefused(t *testing.T) {
	for _, tok := range []string{"   ", " leading-and-long-enough", "short"} {
		_, errOut, code := runMain(map[string]string{"APMTEL_MONITOR_TOKEN": tok}, "monitor")
		if code != 2 || !strings.Contains(errOut, "APMTEL_MONITOR_TOKEN: must be at least 16 characters") || strings.Contains(errOut, tok) && strings.TrimSpace(tok) != "" {
			t.Errorf("token %q: exit %d, %q", tok, code, errOut)
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

// testRuntime is the process runtime of a command under test, closed with the test.
func testRuntime(t *testing.T, cfg config.Config) *runtime {
	t.Helper()
	rt, err := newRuntime(cfg, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	return rt
}

// The CLI as a user meets it: help for one command lists its flags and the
// global ones once; a typo gives one line and a suggestion; subcommand
// families answer --help; completion and version work.
func TestCLIHelpTyposCompletion(t *testing.T) {
	out, _, code := runMain(nil, "help", "run")
	if code != 0 || !strings.Contains(out, "--wait") || !strings.Contains(out, "--no-upload") || !strings.Contains(out, "Global flags:") ||
		!strings.Contains(out, "--redis-addr") || strings.Contains(out, "--concurrency") || strings.Contains(out, "--source-url") ||
		strings.Contains(out, "password") || strings.Count(out, "--redis-addr") != 1 {
		t.Errorf("help run: exit %d\n%s", code, out)
	}
	if out2, _, _ := runMain(nil, "run", "--help"); out2 != out {
		t.Errorf("run --help differs from help run")
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "--wiat"}, 2, "apmtel run: unknown flag --wiat (did you mean --wait?)\n"},
		{[]string{"snapshot", "--reprot"}, 2, "apmtel snapshot: unknown flag --reprot (did you mean --report?)\n"},
		{[]string{"rnu"}, 2, `apmtel: unknown command "rnu" (did you mean "run"?); see apmtel --help` + "\n"},
		{[]string{"worker", "--redis-password", "hunter2"}, 2, "apmtel worker: --redis-password: secrets are not accepted as flags"},
	} {
		_, errOut, code := runMain(nil, tc.args...)
		if code != tc.code || !strings.HasPrefix(errOut, strings.TrimSuffix(tc.want, "\n")) || strings.Count(errOut, "\n") != 1 || strings.Contains(errOut, "hunter2") {
			t.Errorf("%v: exit %d, %q; want %d, %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
	for _, args := range [][]string{{"schema", "--help"}, {"sample", "--help"}, {"telemetry-index", "--help"}, {"sample", "apm", "--help"}} {
		if out, errOut, code := runMain(nil, args...); code != 0 || !strings.Contains(out, "Usage: apmtel") {
			t.Errorf("%v: exit %d, %q %q", args, code, out, errOut)
		}
	}
	if out, _, code := runMain(nil, "completion", "bash"); code != 0 || !strings.Contains(out, "bash completion") {
		t.Errorf("completion bash: exit %d", code)
	}
	if out, _, code := runMain(nil, "--version"); code != 0 || !strings.HasPrefix(out, "apmtel ") || !strings.Contains(out, "go1.") {
		t.Errorf("--version: %d %q", code, out)
	}
	if out, _, code := runMain(nil, "tasks", "--json"); code != 0 || !strings.Contains(out, `"name": "aggregated_transactions"`) {
		t.Errorf("tasks --json: %d %q", code, out)
	}
	if _, errOut, code := runMain(map[string]string{"APMTEL_REDIS_ADDR": "127.0.0.1:1"}, "runs"); code != 1 ||
		errOut != "apmtel runs: cannot reach Redis (single) at 127.0.0.1:1 (APMTEL_REDIS_ADDR): dial tcp 127.0.0.1:1: connect: connection refused\n" {
		t.Errorf("runs without Redis: exit %d, %q", code, errOut)
	}
}
