package metrics

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"

	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/runtest"
	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/jobs"
)

var tasks = []string{"agents", "cardinality", "cloud", "host", "services"}

// scrape fetches /metrics as Prometheus would and parses it with the
// Prometheus text parser; the text must pass promtool's lint rules.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Accept", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics = %d: %s", resp.StatusCode, body)
	}
	probs, err := promlint.New(strings.NewReader(string(body))).Lint()
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	for _, p := range probs {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	return fams
}

// value returns the sample of family name whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func sum(fams map[string]*dto.MetricFamily, name string) float64 {
	total := 0.0
	for _, m := range fams[name].GetMetric() {
		total += m.GetCounter().GetValue()
	}
	return total
}

func TestMonitorMetrics(t *testing.T) {
	rdb, db := testenv.RedisDB(t)
	ctx := context.Background()
	// History limit 3: the later runs trim the first ones, which must not
	// make a counter go down.
	st := run.NewStore(rdb, keys.New(""), time.Hour, 3)
	base := time.Date(2025, 3, 4, 5, 0, 0, 0, time.UTC)
	a, err := runtest.Seed(ctx, st, runtest.Spec{ID: "run-a", Tasks: tasks, Start: base, Upload: run.UploadUploaded,
		Fail:  map[string]string{"cardinality": "search_phase_execution_exception: too many buckets"},
		Retry: map[string]string{"agents": "connection reset by peer"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := runtest.Seed(ctx, st, runtest.Spec{ID: "run-b", Trigger: "schedule", Tasks: tasks, Start: base.Add(time.Hour), Upload: run.UploadUploaded})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runtest.Seed(ctx, st, runtest.Spec{ID: "run-c", Tasks: tasks, Start: base.Add(2 * time.Hour), Cancel: true}); err != nil {
		t.Fatal(err)
	}

	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: testenv.RedisAddr(t), DB: db})
	defer insp.Close()
	cl := asynq.NewClient(asynq.RedisClientOpt{Addr: testenv.RedisAddr(t), DB: db})
	defer cl.Close()
	if _, err := cl.Enqueue(asynq.NewTask("noop", nil), asynq.Queue(jobs.QueueCollect)); err != nil {
		t.Fatal(err)
	}
	reg := Monitor(insp, rdb, st, 6, jobs.QueueCollect, jobs.QueueControl)
	h := Handler(reg)

	fams := scrape(t, h)
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"apmtel_runs_total", map[string]string{"trigger": "manual", "kind": "full", "status": "failed"}, 1},
		{"apmtel_runs_total", map[string]string{"trigger": "schedule", "kind": "full", "status": "ok"}, 1},
		{"apmtel_runs_total", map[string]string{"trigger": "manual", "kind": "full", "status": "cancelled"}, 1},
		{"apmtel_task_attempts_total", map[string]string{"task": "agents", "status": "retrying"}, 1},
		// run-a's second attempt, run-b's, and run-c's, which ran before
		// the cancel (it cancels after the first half of the tasks).
		{"apmtel_task_attempts_total", map[string]string{"task": "agents", "status": "ok"}, 3},
		{"apmtel_task_attempts_total", map[string]string{"task": "cardinality", "status": "failed"}, 1},
		{"apmtel_uploads_total", map[string]string{"outcome": "uploaded"}, 2},
		{"apmtel_uploads_total", map[string]string{"outcome": "skipped"}, 1},
		{"apmtel_task_duration_seconds", map[string]string{"task": "agents"}, 3},
		// run-c's cloud never started: no took to observe.
		{"apmtel_task_duration_seconds", map[string]string{"task": "cloud"}, 2},
		{"apmtel_run_duration_seconds", map[string]string{"kind": "full"}, 2},
		{"apmtel_last_successful_run_timestamp_seconds", nil, unix(b.SealedAt)},
		{"apmtel_last_delivered_upload_timestamp_seconds", nil, unix(b.Upload.At)},
		{"apmtel_runs_scrape_ok", nil, 1},
		{"apmtel_queue_jobs", map[string]string{"queue": jobs.QueueCollect, "state": "pending"}, 1},
		{"apmtel_queue_jobs", map[string]string{"queue": jobs.QueueControl, "state": "pending"}, 0},
		{"apmtel_queue_processed_total", map[string]string{"queue": jobs.QueueCollect}, 0},
		{"apmtel_queue_scrape_ok", nil, 1},
		{"apmtel_build_info", nil, 1},
	}
	for _, c := range checks {
		got, ok := value(t, fams, c.name, c.labels)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s missing: the Go and process collectors are not registered", name)
		}
	}
	// run-a's wall time is creation to seal.
	if f := fams["apmtel_run_duration_seconds"]; f != nil {
		want := a.SealedAt.Sub(a.CreatedAt).Seconds() + b.SealedAt.Sub(b.CreatedAt).Seconds()
		if got := f.Metric[0].Histogram.GetSampleSum(); got < want-1e-6 || got > want+1e-6 {
			t.Errorf("run duration sum = %v, want %v", got, want)
		}
	}

	// A second scrape counts nothing twice.
	again := scrape(t, h)
	if got := sum(again, "apmtel_runs_total"); got != 3 {
		t.Errorf("after a second scrape runs_total sums to %v, want 3", got)
	}
	// Two more runs push run-a and run-b out of the history (limit 3): the
	// counters keep them and add the new ones.
	for i, id := range []string{"run-d", "run-e"} {
		if _, err := runtest.Seed(ctx, st, runtest.Spec{ID: id, Kind: run.KindDryRun, Tasks: tasks, Start: base.Add(time.Duration(3+i) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Get(ctx, "run-a"); err == nil {
		t.Fatal("run-a still in the history: the trim did not happen, the test proves nothing")
	}
	after := scrape(t, h)
	if got := sum(after, "apmtel_runs_total"); got != 5 {
		t.Errorf("after the trim runs_total sums to %v, want 5 (monotonic)", got)
	}
	if got, _ := value(t, after, "apmtel_runs_total", map[string]string{"kind": "dry-run", "status": "ok"}); got != 2 {
		t.Errorf("dry runs = %v, want 2", got)
	}
	if got, _ := value(t, after, "apmtel_last_successful_run_timestamp_seconds", nil); got != unix(b.SealedAt) {
		t.Errorf("last successful run moved to %v after dry runs (want run-b's %v): dry runs are not uploaded", got, unix(b.SealedAt))
	}

	probs, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// A Redis that cannot be read makes the scrape say so and keeps serving
// the process metrics, instead of failing the whole scrape.
func TestMetricsRedisDown(t *testing.T) {
	rdbAddr := "127.0.0.1:1" // nothing listens on port 1
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: rdbAddr, DialTimeout: 200 * time.Millisecond})
	defer insp.Close()
	reg := Process(insp, nil, jobs.QueueCollect)
	fams := scrape(t, Handler(reg))
	if got, ok := value(t, fams, "apmtel_queue_scrape_ok", nil); !ok || got != 0 {
		t.Errorf("apmtel_queue_scrape_ok = %v (present %v), want 0", got, ok)
	}
	if _, ok := fams["apmtel_queue_jobs"]; ok {
		t.Error("queue gauges reported although Redis is unreachable")
	}
	if _, ok := fams["apmtel_build_info"]; !ok {
		t.Error("apmtel_build_info missing when Redis is down")
	}
	if _, ok := fams["apmtel_runs_total"]; ok {
		t.Error("a worker's registry reports run counters: only the monitor may, or replicas count each run many times")
	}
}

// Raw entries in an active list without a task hash are not counted as
// active: they are apmtel_queue_orphaned_jobs. With one among the first 20
// of the list asynq's GetQueueInfo fails; the counts still come (from the
// lists), the scrape stays ok. Once the orphan is gone the gauge is 0.
func TestOrphanedActiveEntries(t *testing.T) {
	rdb, db := testenv.RedisDB(t)
	ctx := context.Background()
	opt := asynq.RedisClientOpt{Addr: testenv.RedisAddr(t), DB: db}
	insp := asynq.NewInspector(opt)
	defer insp.Close()
	cl := asynq.NewClient(opt)
	defer cl.Close()
	for i := 0; i < 2; i++ {
		if _, err := cl.Enqueue(asynq.NewTask("noop", nil), asynq.Queue(jobs.QueueCollect)); err != nil {
			t.Fatal(err)
		}
	}
	q := keys.AsynqQueue(jobs.QueueCollect)
	// A real active task: moved from pending with its lease, as asynq's
	// dequeue does it (one script), here by hand so no handler is needed.
	real, _ := rdb.LMove(ctx, q.Pending(), q.Active(), "RIGHT", "LEFT").Result()
	rdb.HSet(ctx, q.Task(real), "state", "active")
	rdb.ZAdd(ctx, q.Lease(), redis.Z{Score: float64(time.Now().Add(30 * time.Second).Unix()), Member: real})
	rdb.LPush(ctx, q.Active(), "bogus-1")

	reg := Process(insp, rdb, jobs.QueueCollect, jobs.QueueControl)
	fams := scrape(t, Handler(reg))
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"apmtel_queue_scrape_ok", nil, 1},
		{"apmtel_queue_jobs", map[string]string{"queue": jobs.QueueCollect, "state": "active"}, 1},
		{"apmtel_queue_jobs", map[string]string{"queue": jobs.QueueCollect, "state": "pending"}, 1},
		{"apmtel_queue_orphaned_jobs", map[string]string{"queue": jobs.QueueCollect}, 1},
		{"apmtel_queue_orphaned_jobs", map[string]string{"queue": jobs.QueueControl}, 0},
	} {
		if got, ok := value(t, fams, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	// The orphan removed (what the janitor does): asynq reads the queue
	// again, latency and totals are back, nothing is orphaned.
	rdb.LRem(ctx, q.Active(), 0, "bogus-1")
	fams = scrape(t, Handler(reg))
	if got, ok := value(t, fams, "apmtel_queue_orphaned_jobs", map[string]string{"queue": jobs.QueueCollect}); !ok || got != 0 {
		t.Errorf("orphaned after removal = %v (present %v), want 0", got, ok)
	}
	if got, ok := value(t, fams, "apmtel_queue_jobs", map[string]string{"queue": jobs.QueueCollect, "state": "active"}); !ok || got != 1 {
		t.Errorf("active after removal = %v (present %v), want 1", got, ok)
	}
	if _, ok := value(t, fams, "apmtel_queue_latency_seconds", map[string]string{"queue": jobs.QueueCollect}); !ok {
		t.Error("latency missing once asynq can read the queue again")
	}
}

// More runs end between two scrapes than the history keeps (limit 3, 10
// runs): the counters, kept where runs and uploads end, are exact.
func TestRunCountersExactPastTheHistory(t *testing.T) {
	rdb, db := testenv.RedisDB(t)
	ctx := context.Background()
	st := run.NewStore(rdb, keys.New(""), time.Hour, 3)
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: testenv.RedisAddr(t), DB: db})
	defer insp.Close()
	h := Handler(Monitor(insp, rdb, st, 3, jobs.QueueCollect))
	base := time.Date(2025, 3, 4, 5, 0, 0, 0, time.UTC)
	seed := func(from, n int) {
		for i := from; i < from+n; i++ {
			spec := runtest.Spec{ID: fmt.Sprintf("run-%02d", i), Tasks: tasks, Start: base.Add(time.Duration(i) * time.Minute), Upload: run.UploadUploaded}
			if i%5 == 4 {
				spec.Fail = map[string]string{"cloud": "boom"}
			}
			if _, err := runtest.Seed(ctx, st, spec); err != nil {
				t.Fatal(err)
			}
		}
	}
	seed(0, 2)
	first := scrape(t, h)
	if got := sum(first, "apmtel_runs_total"); got != 2 {
		t.Fatalf("first scrape: runs_total %v, want 2", got)
	}
	seed(2, 10)
	if n, _ := rdb.ZCard(ctx, st.Keys().Runs()).Result(); n != 3 {
		t.Fatalf("history holds %d runs, want 3: the test proves nothing", n)
	}
	fams := scrape(t, h)
	for _, c := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"trigger": "manual", "kind": "full", "status": "ok"}, 10},
		{map[string]string{"trigger": "manual", "kind": "full", "status": "failed"}, 2},
	} {
		if got, _ := value(t, fams, "apmtel_runs_total", c.labels); got != c.want {
			t.Errorf("runs_total%v = %v, want %v", c.labels, got, c.want)
		}
	}
	if got, _ := value(t, fams, "apmtel_uploads_total", map[string]string{"outcome": "uploaded"}); got != 12 {
		t.Errorf("uploads_total{uploaded} = %v, want 12", got)
	}
}
