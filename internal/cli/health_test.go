package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/testenv"
)

func fetch(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls url until it answers want or 10 s pass.
func waitFor(t *testing.T, url string, want int) (int, string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := fetch(t, url, "")
		if code == want || time.Now().After(deadline) {
			return code, body
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMonitorHealthWithRedisDown(t *testing.T) {
	cfg := config.Default()
	cfg.RedisAddr = testenv.FreeAddr(t) // closed port: Redis is "down"
	cfg.MonitorAddr = "127.0.0.1:0"
	cfg.MonitorToken = "s3cret"
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serveMonitor(ctx, cfg, testRuntime(t, cfg), zerolog.Nop(), ready) }()
	base := "http://" + <-ready
	defer func() { cancel(); <-done }()

	tests := []struct {
		path, token string
		code        int
		body        string
	}{
		{"/healthz", "", 200, "ok\n"},
		{"/readyz", "", 503, "not ready: redis unreachable; no worker server connected\n"},
		{"/metrics", "", 401, "unauthorized\n"},
		{"/monitoring/", "", 401, "unauthorized\n"},
	}
	for _, tt := range tests {
		code, body := fetch(t, base+tt.path, tt.token)
		if code != tt.code || body != tt.body {
			t.Errorf("GET %s = %d %q, want %d %q", tt.path, code, body, tt.code, tt.body)
		}
	}
	// healthcheck against it: exit 1 with the reason on one line.
	_, errOut, code := runMain(nil, "healthcheck", "--url", base+"/readyz")
	if code != 1 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "503 Service Unavailable: not ready: redis unreachable") {
		t.Errorf("healthcheck, Redis down: exit %d, stderr %q", code, errOut)
	}
	out, _, code := runMain(nil, "healthcheck", "--url", base+"/healthz")
	if code != 0 || out != "ok "+base+"/healthz\n" {
		t.Errorf("healthcheck /healthz: exit %d, stdout %q", code, out)
	}
}

func TestWorkerAndMonitorReady(t *testing.T) {
	_, db := testenv.RedisDB(t)
	cfg := config.Default()
	cfg.RedisAddr = testenv.RedisAddr(t)
	cfg.RedisDB = db
	cfg.Source.URLs = []string{"http://" + testenv.FreeAddr(t)} // never called: no job is enqueued
	cfg.DataDir = t.TempDir()
	cfg.MonitorAddr = "127.0.0.1:0"
	cfg.MonitorToken = "s3cret"
	l := zerolog.Nop()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	monDone := make(chan error, 1)
	go func() { monDone <- serveMonitor(ctx, cfg, testRuntime(t, cfg), l, ready) }()
	mon := "http://" + <-ready
	if code, body := fetch(t, mon+"/readyz", ""); code != 503 || body != "not ready: no worker server connected\n" {
		t.Errorf("monitor /readyz without a worker = %d %q", code, body)
	}

	wcfg := cfg
	wcfg.HTTPAddr = testenv.FreeAddr(t)
	wctx, wcancel := context.WithCancel(ctx)
	wDone := make(chan error, 1)
	go func() { wDone <- serveWorker(wctx, wcfg, testRuntime(t, wcfg), l) }()
	worker := "http://" + wcfg.HTTPAddr
	if code, body := waitFor(t, worker+"/readyz", 200); code != 200 || body != "ready\n" {
		t.Fatalf("worker /readyz = %d %q", code, body)
	}
	if code, body := waitFor(t, mon+"/readyz", 200); code != 200 || body != "ready\n" {
		t.Errorf("monitor /readyz with a worker = %d %q", code, body)
	}
	if code, body := fetch(t, worker+"/healthz", ""); code != 200 || body != "ok\n" {
		t.Errorf("worker /healthz = %d %q", code, body)
	}
	if code, _ := fetch(t, worker+"/metrics", ""); code != 401 {
		t.Errorf("worker /metrics without token = %d, want 401", code)
	}
	if code, body := fetch(t, worker+"/metrics", "s3cret"); code != 200 || !strings.Contains(body, "# TYPE apmtel_queue_jobs gauge") {
		t.Errorf("worker /metrics with token = %d %q", code, body)
	}

	// healthcheck's default URL comes from APMTEL_HTTP_ADDR.
	out, errOut, code := runMain(map[string]string{"APMTEL_HTTP_ADDR": wcfg.HTTPAddr}, "healthcheck")
	if code != 0 || out != "ok "+worker+"/readyz\n" {
		t.Errorf("healthcheck default URL: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	wcancel()
	if err := <-wDone; err != nil {
		t.Fatalf("worker: %v", err)
	}
	if code, body := waitFor(t, mon+"/readyz", 503); code != 503 || body != "not ready: no worker server connected\n" {
		t.Errorf("monitor /readyz after the worker stopped = %d %q", code, body)
	}
	if code, _ := fetch(t, worker+"/healthz", ""); code != 0 {
		t.Errorf("worker endpoint still answers after shutdown: %d", code)
	}
	cancel()
	<-monDone
}

func TestSchedulerHTTP(t *testing.T) {
	_, db := testenv.RedisDB(t)
	cfg := config.Default()
	cfg.RedisAddr = testenv.RedisAddr(t)
	cfg.RedisDB = db
	cfg.OptIn = false
	cfg.HTTPAddr = testenv.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveScheduler(ctx, cfg, testRuntime(t, cfg), zerolog.Nop()) }()
	if code, body := waitFor(t, "http://"+cfg.HTTPAddr+"/readyz", 200); code != 200 || body != "ready\n" {
		t.Errorf("scheduler /readyz = %d %q", code, body)
	}
	// Loopback without a token: /metrics is open.
	if code, body := fetch(t, "http://"+cfg.HTTPAddr+"/metrics", ""); code != 200 || !strings.Contains(body, "apmtel_queue") {
		t.Errorf("scheduler /metrics = %d %q", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("scheduler: %v", err)
	}
}

func TestHTTPAddrOffLoopbackNeedsToken(t *testing.T) {
	env := map[string]string{"APMTEL_HTTP_ADDR": "0.0.0.0:0", "APMTEL_REDIS_ADDR": testenv.FreeAddr(t)}
	for _, cmd := range []string{"scheduler", "worker"} {
		if cmd == "worker" {
			env["APMTEL_SOURCE_URL"] = "http://127.0.0.1:1"
		}
		_, errOut, code := runMain(env, cmd)
		if code != 2 || !strings.Contains(errOut, "APMTEL_MONITOR_TOKEN: required when APMTEL_HTTP_ADDR (0.0.0.0:0) is not a loopback address") {
			t.Errorf("%s: exit %d, stderr %q", cmd, code, errOut)
		}
	}
}

func TestHealthcheckExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"nothing listening", []string{"--url", "http://" + testenv.FreeAddr(t) + "/readyz"}, "connection refused"},
		{"bad flag", []string{"--nope"}, "unknown flag --nope"},
		{"stray argument", []string{"http://x"}, `unexpected argument "http://x"`},
	}
	for _, tt := range tests {
		_, errOut, code := runMain(nil, append([]string{"healthcheck"}, tt.args...)...)
		// Docker reserves exit status 2, so even usage errors exit 1.
		if code != 1 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%s: exit %d, stderr %q", tt.name, code, errOut)
		}
	}
}

func TestVersion(t *testing.T) {
	out, _, code := runMain(nil, "version")
	if code != 0 || !regexp.MustCompile(`^apmtel \S+ \(commit \S+, built \S+, go1\.\d+[^)]*\)\n$`).MatchString(out) {
		t.Errorf("version: exit %d, %q", code, out)
	}
	out, _, code = runMain(nil, "version", "--json")
	var in map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &in) != nil || !strings.HasPrefix(in["go_version"].(string), "go1.") || in["commit"] == "" {
		t.Errorf("version --json: exit %d, %q", code, out)
	}
}
