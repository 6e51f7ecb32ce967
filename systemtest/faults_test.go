package systemtest

// The fault suite: real apmtel processes, real Redis and search engine, and
// a fault proxy in front of the engine. Each scenario asserts its outcome;
// docs/reliability.md lists them with the measured figures.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/faultproxy"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/jobs"
)

// Source answers 503 to every search: bounded retries, each task ends
// failed with the reason, the run finalizes and uploads, nothing stays in flight.
func TestFaultSourceErrors(t *testing.T) {
	t.Parallel()
	p, purl := startProxy(t)
	s := newStack(t)
	s.loadFixture(t)
	env := s.env(t, purl, "APMTEL_MAX_RETRY=1", "APMTEL_SEARCH_TIMEOUT=5s")
	s.Start("worker-1", env, "worker")
	s.Start("worker-2", env, "worker")
	p.SetFault(faultproxy.Fault{Mode: "status", Status: 503, Match: "_search"})
	id := startRun(t, env, "--task", "cloud", "--task", "host", "--task", "global_labels")
	r := s.waitRun(t, id, 90*time.Second, "the run to finalize", func(r run.Run) bool { return finalized(r) && r.Upload.State.Ended() })
	if r.Upload.String() != "skipped (partial)" {
		t.Errorf("a partial run's upload: %s", r.Upload)
	}
	res := s.results(t, id)
	for _, task := range []string{"cloud", "host"} {
		rec := res[task]
		if rec.Status != run.TaskFailed || rec.Attempt != 2 || !strings.Contains(rec.Error, "injected_fault") {
			t.Errorf("%s: %+v, want failed after 2 attempts with the reason", task, rec)
		}
	}
	if res["global_labels"].Status != run.TaskOK {
		t.Errorf("global_labels (no search) = %+v", res["global_labels"])
	}
	if r.Report == nil || strings.Join(r.Report.Failed, ",") != "cloud,host" {
		t.Errorf("report %+v", r.Report)
	}
	// 2 attempts × (1 try + es.DefaultMaxRetries client retries) per failing
	// task, plus the two saved-object searches of the run's one source
	// identity errand (sent at once, each with its client retries): bounded.
	tasks := 2 * 2 * (1 + es.DefaultMaxRetries)
	errand := 2 * (1 + es.DefaultMaxRetries)
	if f := p.Stats().Faulted; f < tasks || f > tasks+errand || p.Stats().InFlight != 0 {
		t.Errorf("proxy: %d faulted requests (want %d-%d), %d still in flight", f, tasks, tasks+errand, p.Stats().InFlight)
	}
}

// A hanging source: each attempt times out (its requests are abandoned), the
// task keeps retrying, and the run finalizes at its deadline with the other
// tasks and uploads.
func TestFaultSourceHangsRunFinalizesAtDeadline(t *testing.T) {
	t.Parallel()
	p, purl := startProxy(t)
	s := newStack(t)
	s.loadFixture(t)
	env := s.env(t, purl, "APMTEL_MAX_RETRY=5", "APMTEL_TASK_TIMEOUT=2s", "APMTEL_SEARCH_TIMEOUT=2s", "APMTEL_RUN_DEADLINE=8s")
	s.Start("worker-1", env, "worker")
	p.SetFault(faultproxy.Fault{Mode: "hang", Match: "task=cloud"})
	started := time.Now()
	id := startRun(t, env, "--task", "cloud", "--task", "host")
	r := s.waitRun(t, id, 60*time.Second, "the deadline finalize", func(r run.Run) bool { return finalized(r) && r.Upload.State.Ended() })
	took := time.Since(started)
	if r.CloseReason != "deadline" || took < 8*time.Second || took > 30*time.Second {
		t.Errorf("closed by %q after %s, want the 8s deadline", r.CloseReason, took)
	}
	res := s.results(t, id)
	if res["host"].Status != run.TaskOK {
		t.Errorf("host = %+v", res["host"])
	}
	// The run's deadline ended the task; the last attempt's error names the
	// deadline that ended that attempt (search or task timeout, both 2s).
	if c := res["cloud"]; c.Status != run.TaskTimeout || c.Deadline != run.DeadlineRun || !strings.Contains(c.Error, "APMTEL_RUN_DEADLINE") ||
		!strings.Contains(c.Error, "timeout after 2s") {
		t.Errorf("cloud = %+v, want timeout naming the deadline and the last error", c)
	}
	s.Eventually(10*time.Second, "abandoned requests to be released", func() bool { return p.Stats().InFlight == 0 })
	// The deadline's own finalize sealed the run: it is not removed while it
	// runs, and completes (retained, not archived).
	s.Eventually(10*time.Second, "the deadline finalize to complete", func() bool {
		info, err := s.insp.GetTaskInfo(jobs.QueueControl, jobs.FinalizeID("", id, jobs.ReasonDeadline))
		return err == nil && info.State == asynq.TaskStateCompleted
	})
	t.Logf("run finalized at its deadline after %s", took.Round(time.Millisecond))
}

// The telemetry cluster is down during the upload: the upload is retried
// until it is back, and exactly one document is written.
func TestFaultTelemetryClusterDown(t *testing.T) {
	t.Parallel()
	p, purl := startProxy(t)
	s := newStack(t)
	s.loadFixture(t)
	index := s.index("telemetry")
	env := s.env(t, testenv.ESURL(t), "APMTEL_TELEMETRY_URL="+purl, "APMTEL_TELEMETRY_INDEX="+index)
	p.SetFault(faultproxy.Fault{Mode: "status", Status: 503, Match: "/_doc/", Count: 8})
	s.Start("worker-1", env, "worker")
	id := startRun(t, env)
	r := s.waitRun(t, id, 90*time.Second, "the upload", func(r run.Run) bool { return r.Upload.State == run.UploadUploaded })
	// The client retries a 503 itself, so 8 refusals take 2-3 job attempts.
	if r.Upload.Attempt < 2 {
		t.Errorf("upload delivered on attempt %d, want a retried upload", r.Upload.Attempt)
	}
	info, err := s.insp.GetTaskInfo(jobs.QueueControl, jobs.UploadID("", id))
	if err != nil || info.Retried < 1 {
		t.Errorf("upload job retried %d times (%v), want at least 1", info.Retried, err)
	}
	if f := p.Stats().Faulted; f != 8 {
		t.Errorf("%d uploads refused, want 8", f)
	}
	if n := countDocs(t, s.es, index); n != 1 {
		t.Errorf("%d documents in the telemetry index, want 1", n)
	}
}

// A worker is SIGKILLed while a task's search is in flight: the task runs
// again on another worker and is recorded once.
func TestFaultWorkerKilled(t *testing.T) {
	t.Parallel()
	p, purl := startProxy(t)
	s := newStack(t)
	s.loadFixture(t)
	env := s.env(t, purl, "APMTEL_MAX_RETRY=3")
	a := s.Start("worker-a", env, "worker")
	p.SetFault(faultproxy.Fault{Mode: "hang", Match: "task=cloud"})
	id := startRun(t, env, "--task", "cloud", "--task", "host")
	s.waitInFlight(t, p, 1)
	killed := time.Now()
	a.Kill()
	p.SetFault(faultproxy.Fault{Mode: "none"})
	s.Start("worker-b", env, "worker")
	s.waitRun(t, id, 4*time.Minute, "recovery of the killed worker's task", finalized)
	recovery := time.Since(killed)
	res := s.results(t, id)
	if c := res["cloud"]; c.Status != run.TaskOK || c.Attempt != 2 {
		t.Errorf("cloud = %+v, want ok on the second attempt", c)
	}
	t.Logf("task recovered %s after SIGKILL", recovery.Round(time.Second))
	fmt.Fprintf(os.Stderr, "MEASURE worker-kill recovery: %s\n", recovery.Round(time.Second))
}

// SIGTERM during a task: the worker stops within its shutdown timeout, the
// job goes back to the queue without using a retry, and another worker completes it.
func TestFaultGracefulShutdown(t *testing.T) {
	t.Parallel()
	p, purl := startProxy(t)
	s := newStack(t)
	s.loadFixture(t)
	env := s.env(t, purl)
	a := s.Start("worker-a", env, "worker")
	p.SetFault(faultproxy.Fault{Mode: "hang", Match: "task=cloud"})
	id := startRun(t, env, "--task", "cloud")
	s.waitInFlight(t, p, 1)
	sent := time.Now()
	if err := a.Stop(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	stopped := time.Since(sent)
	if stopped > 10*time.Second {
		t.Errorf("worker took %s to stop", stopped)
	}
	p.SetFault(faultproxy.Fault{Mode: "none"})
	s.Start("worker-b", env, "worker")
	s.waitRun(t, id, time.Minute, "the task to finish on the other worker", finalized)
	if c := s.results(t, id)["cloud"]; c.Status != run.TaskOK || c.Attempt != 1 {
		t.Errorf("cloud = %+v, want ok on attempt 1 (shutdown uses no retry)", c)
	}
	fmt.Fprintf(os.Stderr, "MEASURE graceful stop: %s\n", stopped.Round(100*time.Millisecond))
}

// Redis restarts mid-run: workers reconnect by themselves, and with AOF no
// recorded result is lost.
func TestFaultRedisRestart(t *testing.T) {
	t.Parallel()
	p, purl := startProxy(t)
	dir := t.TempDir()
	addr, stop := ownRedis(t, dir, 0)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	s := stackOn(t, rdb, addr, 0)
	s.loadFixture(t)
	env := s.env(t, purl)
	haddr := testenv.FreeAddr(t)
	health := "http://" + haddr + "/readyz"
	s.Start("worker-1", append(env, "APMTEL_HTTP_ADDR="+haddr), "worker")
	s.Start("scheduler", append(env, "APMTEL_INTERVAL=1m"), "scheduler")
	p.SetFault(faultproxy.Fault{Mode: "hang", Match: "task=cloud"})
	id := startRun(t, env, "--task", "cloud", "--task", "host", "--task", "versions")
	s.Eventually(30*time.Second, "host and versions to be recorded", func() bool {
		res, err := s.st.Results(context.Background(), id)
		return err == nil && res["host"].Status == run.TaskOK && res["versions"].Status == run.TaskOK
	})
	s.Eventually(10*time.Second, "the worker to be ready", func() bool { return readyz(health) == http.StatusOK })
	before := s.results(t, id)
	stop()
	port := strings.TrimPrefix(addr, "127.0.0.1:")
	var n int
	fmt.Sscan(port, &n)
	s.Eventually(10*time.Second, "the worker to report Redis down", func() bool { return readyz(health) == http.StatusServiceUnavailable })
	ownRedis(t, dir, n)
	p.SetFault(faultproxy.Fault{Mode: "none"})
	s.waitRun(t, id, 2*time.Minute, "the run to finish after the restart", finalized)
	after := s.results(t, id)
	for _, task := range []string{"host", "versions"} {
		if d := cmp.Diff(before[task], after[task]); d != "" {
			t.Errorf("%s changed across the restart (-before +after):\n%s", task, d)
		}
	}
	if after["cloud"].Status != run.TaskOK {
		t.Errorf("cloud = %+v", after["cloud"])
	}
	// The scheduler reconnected too: it starts the run of a minute slot that
	// began after the restart.
	restarted := time.Now()
	s.Eventually(90*time.Second, "a scheduled run after the restart", func() bool {
		runs, err := s.st.List(context.Background(), 10)
		if err != nil {
			return false
		}
		for _, r := range runs {
			if r.Trigger == "scheduled" && r.CreatedAt.After(restarted) {
				return true
			}
		}
		return false
	})
}

// `apmtel cancel` stops a run's in-flight searches: nothing stays in flight
// at the proxy and the engine's tasks API shows no search of the run.
func TestFaultCancel(t *testing.T) {
	t.Parallel()
	p, purl := startProxy(t)
	s := newStack(t)
	s.loadFixture(t)
	env := s.env(t, purl, "APMTEL_CONCURRENCY=4")
	s.Start("worker-1", env, "worker")
	p.SetFault(faultproxy.Fault{Mode: "hang", Match: "_search"})
	id := startRun(t, env, "--task", "cloud", "--task", "host", "--task", "versions")
	s.waitInFlight(t, p, 3)
	out, stderr, code := testenv.Exec(t, env, "cancel", id)
	if code != 0 || !strings.Contains(out, "3 tasks cancelled (3 were running: their searches stopped)") {
		t.Fatalf("cancel: %d %s %s", code, out, stderr)
	}
	s.Eventually(10*time.Second, "cancelled searches to leave the proxy", func() bool { return p.Stats().InFlight == 0 })
	r := s.waitRun(t, id, 30*time.Second, "the cancelled run", func(r run.Run) bool { return r.Status == run.StatusCancelled })
	if r.CloseReason != run.ReasonCancelled || r.Upload.String() != "skipped (cancelled)" {
		t.Errorf("run: reason %q upload %q", r.CloseReason, r.Upload)
	}
	for task, rec := range s.results(t, id) {
		if rec.Status != run.TaskCancelled {
			t.Errorf("%s = %+v", task, rec)
		}
	}
	// The engine's side: no search labelled with this run.
	b, err := s.es.Do(context.Background(), es.Request{Method: "GET", Endpoint: "_tasks", ClusterWide: true,
		Params: url.Values{"actions": {"*search*"}, "detailed": {"true"}}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), id) {
		t.Errorf("engine still runs a search of %s: %s", id, b)
	}
	// Late attempts of the cancelled jobs are dropped, not recorded, and the
	// cancel leaves nothing in Asynqmon that looks like an outage: once no
	// job of the run is left to run, nothing can record anything.
	s.Eventually(30*time.Second, "no job left to run", func() bool {
		for _, q := range []string{jobs.QueueCollect, jobs.QueueControl} {
			info, err := s.insp.GetQueueInfo(q)
			if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
				return false
			}
			if err == nil && info.Active+info.Pending+info.Scheduled+info.Retry != 0 {
				return false
			}
		}
		return true
	})
	for task, rec := range s.results(t, id) {
		if rec.Status != run.TaskCancelled {
			t.Errorf("after retries: %s = %+v", task, rec)
		}
	}
	for _, q := range []string{jobs.QueueCollect, jobs.QueueControl} {
		info, err := s.insp.GetQueueInfo(q)
		if err != nil {
			continue
		}
		if info.Failed != 0 || info.Retry != 0 || info.Archived != 0 || info.Pending != 0 || info.Scheduled != 0 {
			t.Errorf("queue %s after cancel: failed %d, retry %d, archived %d, pending %d, scheduled %d",
				q, info.Failed, info.Retry, info.Archived, info.Pending, info.Scheduled)
		}
	}
	// A second cancel is refused: exit 1, and it says why.
	if _, stderr, code := testenv.Exec(t, env, "cancel", id); code != 1 || !strings.Contains(stderr, "already cancelled") {
		t.Errorf("second cancel: exit %d, %q", code, stderr)
	}
}

// Bad input in the queues is archived with a clear error, never retried,
// and the next run is unaffected.
func TestFaultBadInput(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.loadFixture(t)
	env := s.env(t, testenv.ESURL(t))
	s.Start("worker-1", env, "worker")
	bad := []struct {
		typ, queue string
		payload    []byte
		want       string
	}{
		{jobs.TypeCollect, jobs.QueueCollect, []byte("\x00\x01 garbage"), "bad payload"},
		{jobs.TypeCollect, jobs.QueueCollect, []byte(`{"run_id":"r1","task":"cloud","extra":true}`), "unknown field"},
		{jobs.TypeCollect, jobs.QueueCollect, []byte(`{"run_id":"` + strings.Repeat("x", 5000) + `"}`), "exceeds the limit"},
		{jobs.TypeFinalize, jobs.QueueControl, []byte(`[1,2,3]`), "bad payload"},
		{"telemetry:nosuch", jobs.QueueCollect, []byte(`{}`), "unknown job type"},
	}
	for _, b := range bad {
		if _, err := s.cl.Enqueue(asynq.NewTask(b.typ, b.payload), asynq.Queue(b.queue), asynq.MaxRetry(10)); err != nil {
			t.Fatal(err)
		}
	}
	s.Eventually(30*time.Second, "bad jobs to be archived", func() bool {
		n := 0
		for _, q := range []string{jobs.QueueCollect, jobs.QueueControl} {
			a, _ := s.insp.ListArchivedTasks(q)
			n += len(a)
		}
		return n == len(bad)
	})
	var errs []string
	for _, q := range []string{jobs.QueueCollect, jobs.QueueControl} {
		a, _ := s.insp.ListArchivedTasks(q)
		for _, ti := range a {
			if ti.Retried != 0 {
				t.Errorf("%s was retried %d times", ti.Type, ti.Retried)
			}
			errs = append(errs, ti.LastErr)
		}
	}
	all := strings.Join(errs, "\n")
	for _, b := range bad {
		if !strings.Contains(all, b.want) {
			t.Errorf("no archived error mentions %q:\n%s", b.want, all)
		}
	}
	id := startRun(t, env, "--task", "cloud")
	s.waitRun(t, id, 30*time.Second, "a normal run after the bad jobs", finalized)
	if c := s.results(t, id)["cloud"]; c.Status != run.TaskOK {
		t.Errorf("cloud = %+v", c)
	}
	// Corrupt snapshot JSON: a clear error, exit 1.
	s.rdb.Set(context.Background(), s.st.Keys().Snapshot(id), "{corrupt", 0)
	_, stderr, code := testenv.Exec(t, env, "snapshot", "--run", id)
	if code != 1 || !strings.Contains(stderr, "is corrupt") {
		t.Errorf("corrupt snapshot: exit %d, %q", code, stderr)
	}
	// Invalid configuration: one line naming the variable, exit 2.
	for _, kv := range []string{"APMTEL_POLL_INTERVAL=soon", "APMTEL_INDICES_SPAN=bad pattern", "APMTEL_SOURCE_URL=ftp://x"} {
		_, stderr, code := testenv.Exec(t, append(env, kv), "worker")
		name := strings.SplitN(kv, "=", 2)[0]
		if code != 2 || !strings.Contains(stderr, name) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%s: exit %d, stderr %q", kv, code, stderr)
		}
	}
}

// 4 workers at concurrency 10 never send more than APMTEL_SEARCH_CONCURRENCY
// requests to the source at once.
func TestFaultSearchConcurrencyLimit(t *testing.T) {
	t.Parallel()
	p, purl := startProxy(t)
	s := newStack(t)
	s.loadFixture(t)
	env := s.env(t, purl, "APMTEL_CONCURRENCY=10", "APMTEL_SEARCH_CONCURRENCY=4")
	for i := 1; i <= 4; i++ {
		s.Start(fmt.Sprint("worker-", i), env, "worker")
	}
	p.SetFault(faultproxy.Fault{Mode: "delay", DelayMS: 150})
	id := startRun(t, env)
	s.waitRun(t, id, 3*time.Minute, "the run", finalized)
	st := p.Stats()
	if st.MaxInFlight > 4 || st.MaxInFlight < 3 {
		t.Errorf("max requests in flight at the source = %d, want 3-4 (cap 4)", st.MaxInFlight)
	}
	for task, rec := range s.results(t, id) {
		if rec.Status != run.TaskOK {
			t.Errorf("%s = %+v", task, rec)
		}
	}
	fmt.Fprintf(os.Stderr, "MEASURE limiter: %d requests, max in flight %d\n", st.Requests, st.MaxInFlight)
}

// No configured secret appears in logs, run records, snapshots, job payloads or payload files.
func TestNoSecretsLeak(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.loadFixture(t)
	data := t.TempDir()
	secrets := []string{"Sup3r-S3cret-Passw0rd", "QVBJLWtleS1zZWNyZXQ6dmFsdWU="}
	env := s.env(t, testenv.ESURL(t), "APMTEL_SOURCE_USERNAME=elastic", "APMTEL_SOURCE_PASSWORD="+secrets[0],
		"APMTEL_LOG_LEVEL=debug", "APMTEL_DATA_DIR="+data)
	env = append(env, "APMTEL_TELEMETRY_URL="+testenv.ESURL(t), "APMTEL_TELEMETRY_API_KEY="+secrets[1], "APMTEL_TELEMETRY_INDEX="+s.index("telemetry"))
	w := s.Start("worker-1", env, "worker")
	sch := s.Start("scheduler", env, "scheduler")
	id := startRun(t, env)
	s.waitRun(t, id, 2*time.Minute, "the run", func(r run.Run) bool { return finalized(r) && r.Upload.State.Ended() })
	runsOut, runsErr, _ := testenv.Exec(t, env, "runs", "--json")
	_, badCfg, _ := testenv.Exec(t, append(env, "APMTEL_REDIS_DB=-1"), "worker")
	var everything strings.Builder
	everything.WriteString(w.Output() + sch.Output() + runsOut + runsErr + badCfg)
	keys, _ := s.rdb.Keys(context.Background(), "*").Result()
	for _, k := range keys {
		switch s.rdb.Type(context.Background(), k).Val() {
		case "string":
			everything.WriteString(s.rdb.Get(context.Background(), k).Val())
		case "hash":
			everything.WriteString(fmt.Sprint(s.rdb.HGetAll(context.Background(), k).Val()))
		}
	}
	_ = filepath.Walk(data, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(path)
			everything.Write(b)
		}
		return nil
	})
	for _, sec := range secrets {
		if strings.Contains(everything.String(), sec) {
			t.Errorf("secret %q leaked", sec)
		}
	}
	if everything.Len() < 10000 {
		t.Errorf("only %d bytes searched; the check would prove nothing", everything.Len())
	}
}
