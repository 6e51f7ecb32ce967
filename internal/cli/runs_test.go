package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/testenv"
)

// redisEnv is the environment of a command on a fresh test database.
func redisEnv(t *testing.T) map[string]string {
	t.Helper()
	_, db := testenv.RedisDB(t)
	return map[string]string{"APMTEL_REDIS_ADDR": testenv.RedisAddr(t), "APMTEL_REDIS_DB": fmt.Sprint(db)}
}

// mustJSON fails unless out is exactly one JSON document.
func mustJSON(t *testing.T, what, out string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: stdout is not JSON: %v\n%s", what, err, out)
	}
	if dec.More() {
		t.Fatalf("%s: stdout holds more than one JSON document:\n%s", what, out)
	}
	return v
}

// runs as a newcomer reads it: "none" for an empty list, one run by id (or
// a refusal), "—" for a partial run's upload, JSON only with --json; cancel
// counts tasks as the run's records do; the no-worker warning names the
// database.
func TestRunsAndCancelAgreeWithTheRecords(t *testing.T) {
	env := redisEnv(t)
	if out, errOut, code := runMain(env, "runs", "--pending-upload"); code != 0 || out != "none\n" {
		t.Errorf("runs --pending-upload on nothing: exit %d, %q %q", code, out, errOut)
	}
	if out, _, code := runMain(env, "runs", "--json"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("runs --json on nothing: exit %d, %q", code, out)
	}
	if _, errOut, code := runMain(env, "runs", "nosuch"); code != 1 || errOut != "apmtel runs: no run nosuch\n" {
		t.Errorf("runs nosuch: exit %d, %q", code, errOut)
	}
	out, errOut, code := runMain(env, "run", "cloud", "host", "agents")
	id := strings.TrimSpace(out)
	if code != 0 || id == "" || strings.Contains(id, "\n") {
		t.Fatalf("run: exit %d, %q %q", code, out, errOut)
	}
	out, _, code = runMain(env, "runs", id)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[1], id) || !strings.HasSuffix(lines[1], "—") {
		t.Errorf("runs %s: exit %d\n%s", id, code, out)
	}
	for _, args := range [][]string{{"runs", "--json"}, {"runs", id, "--json"}, {"snapshot", id, "--report", "--json"}} {
		out, errOut, code := runMain(env, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d %s", args, code, errOut)
		}
		mustJSON(t, strings.Join(args, " "), out)
	}
	out, errOut, code = runMain(env, "cancel", id)
	if code != 0 || out != fmt.Sprintf("run %s cancelled: 3 tasks cancelled (0 were running: their searches stopped), no upload\n", id) {
		t.Errorf("cancel: exit %d, %q %q", code, out, errOut)
	}
	out, _, _ = runMain(env, "snapshot", id, "--report", "--json")
	var rep struct {
		Tasks map[string]struct {
			Status string `json:"status"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	cancelled := 0
	for _, rec := range rep.Tasks {
		if rec.Status == "cancelled" {
			cancelled++
		}
	}
	if cancelled != 3 {
		t.Errorf("the report counts %d cancelled tasks, cancel said 3", cancelled)
	}
	// Nobody works this database: the warning names address and database.
	_, errOut, code = runMain(env, "run", "cloud", "--wait", "--timeout", "1500ms")
	if code != 1 || !strings.Contains(errOut, fmt.Sprintf("no worker connected to Redis %s database %s", env["APMTEL_REDIS_ADDR"], env["APMTEL_REDIS_DB"])) ||
		!strings.Contains(errOut, "gave up waiting after 1.5s (--timeout)") {
		t.Errorf("run --wait without workers: exit %d, %q", code, errOut)
	}
}

// `apmtel run cloud --wait --json | jq .` works: stdout is the JSON
// document and nothing else (the run id goes to stderr).
func TestRunWaitJSONIsOnlyJSON(t *testing.T) {
	t.Parallel()
	env := redisEnv(t)
	c := testenv.ES(t)
	ix := testenv.Indices(testenv.Prefix(t, c))
	for k, v := range map[string]string{
		"APMTEL_SOURCE_URL": testenv.ESURL(t), "APMTEL_DATA_DIR": t.TempDir(), "APMTEL_POLL_INTERVAL": "50ms",
		"APMTEL_INDICES_TRANSACTION": ix.Transaction, "APMTEL_INDICES_SPAN": ix.Span, "APMTEL_INDICES_ERROR": ix.Error,
		"APMTEL_INDICES_METRIC": ix.Metric, "APMTEL_INDICES_ONBOARDING": ix.Onboarding,
		"APMTEL_INDICES_AGENT_CONFIGURATION": ix.AgentConfiguration, "APMTEL_INDICES_KIBANA": ix.Kibana,
	} {
		env[k] = v
	}
	var procEnv []string
	for k, v := range env {
		procEnv = append(procEnv, k+"="+v)
	}
	testenv.NewProcs(t).Start("worker", testenv.Env(procEnv...), "worker")
	out, errOut, code := runMain(env, "run", "cloud", "--wait", "--json", "--timeout", "2m", "--poll", "50ms")
	if code != 0 {
		t.Fatalf("run --wait --json: exit %d\n%s", code, errOut)
	}
	v := mustJSON(t, "run --wait --json", out).(map[string]any)
	r, _ := v["run"].(map[string]any)
	if r == nil || r["kind"] != "partial" || !strings.Contains(errOut, "run "+fmt.Sprint(r["id"])) {
		t.Errorf("run --wait --json: %v; stderr %q", v, errOut)
	}
	// The progress on stderr keeps one column for states, errands included.
	col := map[string]int{}
	for _, l := range strings.Split(errOut, "\n") {
		for _, p := range []string{"[ 1/1] cloud ", "[errand] source_identity "} {
			if strings.HasPrefix(l, p) && strings.Contains(l, " ok ") {
				col[p] = len(l) - len(strings.TrimLeft(l[len(p):], " "))
			}
		}
	}
	if len(col) != 2 || col["[ 1/1] cloud "] != col["[errand] source_identity "] {
		t.Errorf("task and errand states start at %v, want one column:\n%s", col, errOut)
	}
}

// run --wait rides out a Redis restart (up to its --timeout), saying so
// once, and then follows the run to its end, as the workers' bridge does.
func TestRunWaitRidesOutARedisRestart(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed")
	}
	dir := t.TempDir()
	addr := testenv.FreeAddr(t)
	port := addr[strings.LastIndex(addr, ":")+1:]
	start := func() *exec.Cmd {
		cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", port, "--dir", dir, "--save", "3600 1", "--appendonly", "no")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 10*time.Second, "redis-server answers", func() bool {
			_, _, code := runMain(map[string]string{"APMTEL_REDIS_ADDR": addr}, "runs")
			return code == 0
		})
		return cmd
	}
	srv := start()
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	env := map[string]string{"APMTEL_REDIS_ADDR": addr}
	openFull := func() string {
		out, _, _ := runMain(env, "runs", "--json")
		var runs []struct {
			ID     string `json:"id"`
			Kind   string `json:"kind"`
			Status string `json:"status"`
		}
		_ = json.Unmarshal([]byte(out), &runs)
		for _, r := range runs {
			if r.Kind == "full" && r.Status == "open" {
				return r.ID
			}
		}
		return ""
	}
	var wg sync.WaitGroup
	var werr bytes.Buffer
	var wcode int
	wg.Add(1)
	go func() {
		defer wg.Done()
		wcode = Main([]string{"run", "--wait", "--timeout", "1m", "--poll", "20ms"}, &bytes.Buffer{}, &werr,
			func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	}()
	testenv.Eventually(t, 10*time.Second, "the run started", func() bool { return openFull() != "" })
	// Stop Redis (SIGTERM saves the data), keep it down, start it again.
	_ = srv.Process.Signal(syscall.SIGTERM)
	_ = srv.Wait()
	// Longer than the client's own retries (go-redis backs off up to 512 ms, three times).
	time.Sleep(3 * time.Second)
	srv = start()
	// The run ends (cancelled), so the waiter returns.
	id := openFull()
	if id == "" {
		t.Fatal("the run did not survive the restart")
	}
	if _, errOut, code := runMain(env, "cancel", id); code != 0 {
		t.Fatalf("cancel: exit %d %s", code, errOut)
	}
	wg.Wait()
	got := werr.String()
	if wcode != 1 || strings.Count(got, "does not answer") != 1 || !strings.Contains(got, "Redis answers again") ||
		!strings.Contains(got, "was cancelled") {
		t.Errorf("run --wait across a Redis restart: exit %d\n%s", wcode, got)
	}
}
