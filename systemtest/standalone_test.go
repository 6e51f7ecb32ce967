package systemtest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/testenv"
)

// TestStandalone runs scheduler, workers and Asynqmon in one process on an
// embedded Redis, and a second process joins it to trigger a run.
func TestStandalone(t *testing.T) {
	t.Parallel()
	s := newWorld(t)
	s.loadFixture(t)
	redisAddr, monAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	env := testenv.Env(append(s.indexEnv(), "APMTEL_SOURCE_URL="+testenv.ESURL(t), "APMTEL_MONITOR_ADDR="+monAddr,
		"APMTEL_POLL_INTERVAL=100ms", "APMTEL_DATA_DIR="+t.TempDir())...)
	p := s.Start("standalone", env, "standalone", "--workers", "2", "--embedded-redis-addr", redisAddr)
	s.Eventually(20*time.Second, "the monitor", func() bool {
		res, err := http.Get("http://" + monAddr + "/healthz")
		if err == nil {
			res.Body.Close()
		}
		return err == nil && res.StatusCode == 200
	})
	if !strings.Contains(p.Output(), "NOT DURABLE") {
		t.Errorf("standalone does not warn about its embedded Redis:\n%s", p.Output())
	}
	out, stderr, code := testenv.Exec(t, append(env, "APMTEL_REDIS_ADDR="+redisAddr), "run", "--wait")
	if code != 0 || !strings.Contains(out, "21/21 tasks ok") {
		t.Fatalf("run --wait: exit %d\n%s\n%s", code, out, stderr)
	}
	// Asynqmon's API answers through the monitor.
	res, err := http.Get("http://" + monAddr + "/monitoring/api/queues")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var queues struct {
		Queues []struct {
			Queue     string `json:"queue"`
			Processed int    `json:"processed"`
		} `json:"queues"`
	}
	if err := json.Unmarshal(b, &queues); err != nil || len(queues.Queues) == 0 {
		t.Fatalf("asynqmon queues: %v %s", err, b)
	}
	names := map[string]bool{}
	for _, q := range queues.Queues {
		names[q.Queue] = true
	}
	if !names["telemetry"] || !names["telemetry-control"] {
		t.Errorf("queues %s", b)
	}
	// Prometheus metrics of the same monitor.
	mres, err := http.Get("http://" + monAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer mres.Body.Close()
	mb, _ := io.ReadAll(mres.Body)
	for _, want := range []string{
		`apmtel_queue_jobs{queue="telemetry",state="completed"}`,
		`apmtel_uploads_total{outcome="written"}`,
		"# TYPE apmtel_last_successful_run_timestamp_seconds gauge",
		"# TYPE apmtel_task_duration_seconds histogram",
	} {
		if !strings.Contains(string(mb), want) {
			t.Errorf("metrics lack %q:\n%s", want, mb)
		}
	}
}
