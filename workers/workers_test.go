package workers_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/internal/uploader"
	"github.com/apmtel/apmtel/jobs"
	"github.com/apmtel/apmtel/workers"
)

// fakeSource answers GET / with a cluster identity and every search with an
// empty result; failFor makes searches on matching paths fail.
type fakeSource struct{ failFor string }

func (f fakeSource) Do(ctx context.Context, r es.Request) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.ClusterWide && r.Endpoint == "" {
		return []byte(`{"cluster_name":"c1","cluster_uuid":"uuid-1","version":{"number":"8.15.0"}}`), nil
	}
	if f.failFor != "" && strings.Contains(r.Path(), f.failFor) {
		return nil, &es.Error{Status: 400, Type: "query_shard_exception", Reason: "bad field"}
	}
	return []byte(`{"hits":{"total":{"value":7},"hits":[]},"aggregations":{"provider":{"buckets":[{"key":"aws","doc_count":1}]}}}`), nil
}

type bundle struct {
	h     *workers.Handlers
	st    *run.Store
	insp  *asynq.Inspector
	cfg   config.Config
	dir   string
	cl    *asynq.Client
	redis asynq.RedisClientOpt
}

func setup(t *testing.T, src es.Doer, mutate func(*config.Config)) *bundle {
	t.Helper()
	rdb, db := testenv.RedisDB(t)
	cfg := config.Default()
	cfg.TaskTimeout = 5 * time.Second
	cfg.SearchTimeout = 2 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	opt := asynq.RedisClientOpt{Addr: testenv.RedisAddr(t), DB: db}
	cl := asynq.NewClient(opt)
	insp := asynq.NewInspector(opt)
	t.Cleanup(func() { cl.Close(); insp.Close() })
	st := run.NewStore(rdb, keys.New(""), time.Hour, 50)
	dir := t.TempDir()
	h := workers.NewHandlers(workers.Deps{Config: cfg, Clusters: workers.OneCluster{Runs: st, Executor: workers.NewExecutor(cfg, src)}, Registry: telemetry.Default(),
		Sink: uploader.FileSink{Dir: dir}, Enqueuer: cl, Jobs: insp, Logger: zerolog.Nop()})
	return &bundle{h: h, st: st, insp: insp, cfg: cfg, dir: dir, cl: cl, redis: opt}
}

func (b *bundle) createRun(t *testing.T, id string, tasks ...string) run.Run {
	t.Helper()
	now := time.Now()
	r := run.Run{ID: id, Trigger: "manual", Kind: run.KindFull, CreatedAt: now, Deadline: now.Add(time.Minute), Tasks: tasks, Indices: config.DefaultIndices()}
	if _, err := b.st.Create(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

func collectTask(id, task string) *asynq.Task {
	b, _ := json.Marshal(jobs.CollectPayload{RunID: id, Task: task})
	return asynq.NewTask(jobs.TypeCollect, b)
}

func runTask(id, typ, reason string) *asynq.Task {
	b, _ := json.Marshal(jobs.RunPayload{RunID: id, Reason: reason})
	return asynq.NewTask(typ, b)
}

func (b *bundle) pendingControl(t *testing.T) []string {
	t.Helper()
	infos, err := b.insp.ListPendingTasks(jobs.QueueControl)
	if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		t.Fatal(err)
	}
	var ids []string
	for _, i := range infos {
		ids = append(ids, i.ID)
	}
	return ids
}

func TestCollectFinalizeUpload(t *testing.T) {
	b := setup(t, fakeSource{}, nil)
	ctx := context.Background()
	b.createRun(t, "r1", "cloud", "agent_configuration")
	if err := b.h.Collect(ctx, collectTask("r1", "cloud")); err != nil {
		t.Fatal(err)
	}
	if ids := b.pendingControl(t); len(ids) != 0 {
		t.Fatalf("finalize enqueued too early: %v", ids)
	}
	// A duplicate delivery of the same job is harmless.
	if err := b.h.Collect(ctx, collectTask("r1", "cloud")); err != nil {
		t.Fatal(err)
	}
	if err := b.h.Collect(ctx, collectTask("r1", "agent_configuration")); err != nil {
		t.Fatal(err)
	}
	if ids := b.pendingControl(t); len(ids) != 1 || ids[0] != jobs.FinalizeID("", "r1", "complete") {
		t.Fatalf("want one finalize job, got %v", ids)
	}
	// Finalize twice (complete and deadline): one snapshot, one upload job.
	for _, reason := range []string{"complete", "deadline"} {
		if err := b.h.Finalize(ctx, runTask("r1", jobs.TypeFinalize, reason)); err != nil {
			t.Fatal(err)
		}
	}
	r, _ := b.st.Get(ctx, "r1")
	if r.Status != run.StatusSealed || r.CloseReason != run.ReasonComplete || r.Upload.State != run.UploadPending {
		t.Errorf("run = %+v", r)
	}
	snap, err := b.st.Snapshot(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(snap, &got); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]any{"aws"}, got["cloud"].(map[string]any)["provider"]); d != "" {
		t.Errorf("cloud.provider (-want +got):\n%s", d)
	}
	if v := got["counts"].(map[string]any)["agent_configuration"].(map[string]any)["all"]; v != 7.0 {
		t.Errorf("agent_configuration = %v", v)
	}
	tasks := got["tasks"].(map[string]any)
	if _, ok := tasks["cloud"].(map[string]any)["took"].(map[string]any)["ms"]; !ok || len(tasks) != 2 {
		t.Errorf("tasks = %v", tasks)
	}
	ids := b.pendingControl(t)
	uploads := 0
	for _, id := range ids {
		if id == jobs.UploadID("", "r1") {
			uploads++
		}
	}
	if uploads != 1 {
		t.Errorf("upload jobs = %v", ids)
	}
	// Upload twice: the same file, the same document.
	for i := 0; i < 2; i++ {
		if err := b.h.Upload(ctx, runTask("r1", jobs.TypeUpload, "")); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(b.dir, "*.json"))
	if len(files) != 1 || filepath.Base(files[0]) != "uuid-1_r1.json" {
		t.Fatalf("payload files = %v", files)
	}
	doc, _ := os.ReadFile(files[0])
	if !strings.Contains(string(doc), `"cluster_uuid": "uuid-1"`) || !strings.Contains(string(doc), `"provider": [`) {
		t.Errorf("payload = %s", doc)
	}
	r, _ = b.st.Get(ctx, "r1")
	if r.Upload.State != run.UploadWritten {
		t.Errorf("upload status = %s", r.Upload)
	}
}

func TestFailedTaskKeepsLastGoodValue(t *testing.T) {
	b := setup(t, fakeSource{}, nil)
	ctx := context.Background()
	b.createRun(t, "r1", "cloud")
	if err := b.h.Collect(ctx, collectTask("r1", "cloud")); err != nil {
		t.Fatal(err)
	}
	if err := b.h.Finalize(ctx, runTask("r1", jobs.TypeFinalize, "complete")); err != nil {
		t.Fatal(err)
	}

	// The next run's cloud task fails permanently (a 400): no retry, and the
	// snapshot keeps the previous value without tasks.cloud.
	failing := workers.NewHandlers(workers.Deps{Config: b.cfg, Clusters: workers.OneCluster{Runs: b.st, Executor: workers.NewExecutor(b.cfg, fakeSource{failFor: "_search"})},
		Registry: telemetry.Default(), Sink: uploader.FileSink{Dir: b.dir}, Enqueuer: b.cl, Logger: zerolog.Nop()})
	time.Sleep(2 * time.Millisecond)
	b.createRun(t, "r2", "cloud")
	err := failing.Collect(ctx, collectTask("r2", "cloud"))
	if !errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), "bad field") {
		t.Fatalf("want SkipRetry with the reason, got %v", err)
	}
	if err := failing.Finalize(ctx, runTask("r2", jobs.TypeFinalize, "complete")); err != nil {
		t.Fatal(err)
	}
	snap, err := b.st.Snapshot(ctx, "r2")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(snap, &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got["tasks"]; ok {
		t.Errorf("failed task has took: %s", snap)
	}
	if d := cmp.Diff([]any{"aws"}, got["cloud"].(map[string]any)["provider"]); d != "" {
		t.Errorf("last good value not kept (-want +got):\n%s", d)
	}
	r, _ := b.st.Get(ctx, "r2")
	rep := *r.Report
	if !slices.Equal(rep.Failed, []string{"cloud"}) || !slices.Equal(rep.CarriedOver, []string{"cloud"}) || rep.Tasks["cloud"].Status != run.TaskFailed {
		t.Errorf("report = %+v", rep)
	}
}

func TestDeadlineMarksUnfinishedTasks(t *testing.T) {
	b := setup(t, fakeSource{}, nil)
	ctx := context.Background()
	b.createRun(t, "r1", "cloud", "host")
	if err := b.h.Collect(ctx, collectTask("r1", "cloud")); err != nil {
		t.Fatal(err)
	}
	if err := b.h.Finalize(ctx, runTask("r1", jobs.TypeFinalize, "deadline")); err != nil {
		t.Fatal(err)
	}
	res, _ := b.st.Results(ctx, "r1")
	if res["host"].Status != run.TaskTimeout || !strings.Contains(res["host"].Error, "deadline") {
		t.Errorf("host = %+v", res["host"])
	}
	// A result arriving after the deadline is dropped, not merged.
	if err := b.h.Collect(ctx, collectTask("r1", "host")); err != nil {
		t.Fatal(err)
	}
	res, _ = b.st.Results(ctx, "r1")
	if res["host"].Status != run.TaskTimeout {
		t.Errorf("late result replaced the timeout: %+v", res["host"])
	}
	// A "complete" finalize arriving afterwards changes neither the reason,
	// the records nor the payload's timestamp.
	before, _ := b.st.Get(ctx, "r1")
	time.Sleep(5 * time.Millisecond)
	if err := b.h.Finalize(ctx, runTask("r1", jobs.TypeFinalize, "complete")); err != nil {
		t.Fatal(err)
	}
	after, _ := b.st.Get(ctx, "r1")
	if after.CloseReason != run.ReasonDeadline || !after.SealedAt.Equal(before.SealedAt) {
		t.Errorf("second finalize changed the run: reason %q, finalized_at %s → %s", after.CloseReason, before.SealedAt, after.SealedAt)
	}
}

func TestBadJobsAreNotRetried(t *testing.T) {
	b := setup(t, fakeSource{}, nil)
	ctx := context.Background()
	b.createRun(t, "r1", "cloud")
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"garbage collect payload", func() error { return b.h.Collect(ctx, asynq.NewTask(jobs.TypeCollect, []byte("\x00garbage"))) }, "bad payload"},
		{"mismatched payload", func() error {
			return b.h.Collect(ctx, asynq.NewTask(jobs.TypeCollect, []byte(`{"run_id":"r1"}`)))
		}, "task is empty"},
		{"unknown task", func() error { return b.h.Collect(ctx, collectTask("r1", "nosuch")) }, "not a task of run"},
		{"garbage finalize", func() error { return b.h.Finalize(ctx, asynq.NewTask(jobs.TypeFinalize, []byte(`[]`))) }, "bad payload"},
		{"other source", func() error {
			return b.h.Collect(ctx, asynq.NewTask(jobs.TypeCollect, []byte(`{"source":"prod","run_id":"r1","task":"cloud"}`)))
		}, `source cluster "prod"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("want SkipRetry containing %q, got %v", tc.want, err)
			}
		})
	}
	// Jobs of a run that left the history (trimmed, expired) complete
	// quietly: they are no failure, and would only raise false alarms.
	for name, call := range map[string]func() error{
		"collect":  func() error { return b.h.Collect(ctx, collectTask("nosuch", "cloud")) },
		"finalize": func() error { return b.h.Finalize(ctx, runTask("nosuch", jobs.TypeFinalize, "deadline")) },
		"upload":   func() error { return b.h.Upload(ctx, runTask("nosuch", jobs.TypeUpload, "")) },
	} {
		if err := call(); err != nil {
			t.Errorf("%s of a run that is gone: %v", name, err)
		}
	}
	// The run itself is unaffected and still completes.
	if err := b.h.Collect(ctx, collectTask("r1", "cloud")); err != nil {
		t.Fatal(err)
	}
	res, _ := b.st.Results(ctx, "r1")
	if res["cloud"].Status != run.TaskOK {
		t.Errorf("cloud = %+v", res["cloud"])
	}
}

func TestOptOutCollectsButDoesNotSend(t *testing.T) {
	b := setup(t, fakeSource{}, func(c *config.Config) { c.OptIn = false })
	ctx := context.Background()
	b.createRun(t, "r1", "cloud")
	if err := b.h.Collect(ctx, collectTask("r1", "cloud")); err != nil {
		t.Fatal(err)
	}
	if err := b.h.Finalize(ctx, runTask("r1", jobs.TypeFinalize, "complete")); err != nil {
		t.Fatal(err)
	}
	if ids := b.pendingControl(t); len(ids) != 1 || ids[0] != jobs.FinalizeID("", "r1", "complete") {
		t.Errorf("an opted-out run must enqueue no upload: %v", ids)
	}
	if err := b.h.Upload(ctx, runTask("r1", jobs.TypeUpload, "")); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(b.dir, "*.json"))
	r, _ := b.st.Get(ctx, "r1")
	if len(files) != 0 || r.Upload.String() != "skipped (opt-out)" {
		t.Errorf("files=%v upload=%s", files, r.Upload)
	}
	if _, err := b.st.Snapshot(ctx, "r1"); err != nil {
		t.Errorf("snapshot should still be stored: %v", err)
	}
}

// The deadline closed the run but its finalize has not finished when the
// "complete" finalize runs: the run keeps the deadline as its reason.
func TestFinalizeAfterAnotherClose(t *testing.T) {
	b := setup(t, fakeSource{}, nil)
	ctx := context.Background()
	b.createRun(t, "r1", "cloud", "host")
	if err := b.h.Collect(ctx, collectTask("r1", "cloud")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.Close(ctx, "r1", run.ReasonDeadline, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := b.h.Finalize(ctx, runTask("r1", jobs.TypeFinalize, "complete")); err != nil {
		t.Fatal(err)
	}
	r, _ := b.st.Get(ctx, "r1")
	host := b.results(t, "r1")["host"]
	if r.Status != run.StatusSealed || r.CloseReason != run.ReasonDeadline || !strings.Contains(host.Error, "deadline") {
		t.Errorf("run %q/%q, host %+v", r.Status, r.CloseReason, host)
	}
}

func (b *bundle) results(t *testing.T, id string) map[string]run.TaskRecord {
	t.Helper()
	res, err := b.st.Results(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestBridgeRetriesOnlyTransientErrors(t *testing.T) {
	n := 0
	err := workers.Bridge(context.Background(), func() error {
		n++
		if n < 3 {
			return &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Errorf("transient: %d calls, %v", n, err)
	}
	n = 0
	err = workers.Bridge(context.Background(), func() error { n++; return errors.New("wrong number of arguments") })
	if err == nil || n != 1 {
		t.Errorf("permanent error retried: %d calls", n)
	}
}

// scheduledControl lists the control queue's scheduled job ids.
func (b *bundle) scheduledControl(t *testing.T) []string {
	t.Helper()
	infos, err := b.insp.ListScheduledTasks(jobs.QueueControl)
	if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		t.Fatal(err)
	}
	var ids []string
	for _, i := range infos {
		ids = append(ids, i.ID)
	}
	return ids
}

// enqueueDeadline schedules r's deadline finalize as the scheduler does.
func (b *bundle) enqueueDeadline(t *testing.T, r run.Run, at time.Time) {
	t.Helper()
	fin, err := jobs.NewFinalize(jobs.RunPayload{RunID: r.ID, Reason: jobs.ReasonDeadline}, at, b.cfg.Timing())
	if err := jobs.Enqueue(context.Background(), b.cl, fin, err); err != nil {
		t.Fatal(err)
	}
}

// A run sealed before its deadline leaves no deadline finalize in the
// scheduled set; the sealed record is the same before and after; the
// deadline finalize of another, open run is not touched.
func TestEarlySealRemovesDeadlineJob(t *testing.T) {
	b := setup(t, fakeSource{}, nil)
	ctx := context.Background()
	r1 := b.createRun(t, "r1", "cloud")
	r2 := b.createRun(t, "r2", "cloud")
	b.enqueueDeadline(t, r1, r1.Deadline)
	b.enqueueDeadline(t, r2, r2.Deadline)
	if ids := b.scheduledControl(t); len(ids) != 2 {
		t.Fatalf("scheduled before the runs = %v, want both deadline jobs", ids)
	}
	if err := b.h.Collect(ctx, collectTask("r1", "cloud")); err != nil {
		t.Fatal(err)
	}
	if err := b.h.Finalize(ctx, runTask("r1", jobs.TypeFinalize, jobs.ReasonComplete)); err != nil {
		t.Fatal(err)
	}
	sealed, err := b.st.Get(ctx, "r1")
	if err != nil || sealed.Status != run.StatusSealed || sealed.CloseReason != run.ReasonComplete {
		t.Fatalf("r1 = %+v (%v), want sealed (complete)", sealed, err)
	}
	want := jobs.FinalizeID("", "r2", jobs.ReasonDeadline)
	if ids := b.scheduledControl(t); len(ids) != 1 || ids[0] != want {
		t.Fatalf("scheduled after r1 sealed = %v, want only %s", ids, want)
	}
	if _, err := b.insp.GetTaskInfo(jobs.QueueControl, jobs.FinalizeID("", "r1", jobs.ReasonDeadline)); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Errorf("r1's deadline job: %v, want ErrTaskNotFound", err)
	}
	// A repeated finalize (a re-delivery) finds nothing to remove and
	// changes nothing.
	if err := b.h.Finalize(ctx, runTask("r1", jobs.TypeFinalize, jobs.ReasonComplete)); err != nil {
		t.Fatal(err)
	}
	again, err := b.st.Get(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(sealed, again); d != "" {
		t.Errorf("run changed by the repeated finalize (-before +after):\n%s", d)
	}
}

// A removal that fails never fails the seal.
func TestDeadlineJobRemovalIsBestEffort(t *testing.T) {
	b := setup(t, fakeSource{}, nil)
	ctx := context.Background()
	h := workers.NewHandlers(workers.Deps{Config: b.cfg, Clusters: workers.OneCluster{Runs: b.st, Executor: workers.NewExecutor(b.cfg, fakeSource{})}, Registry: telemetry.Default(),
		Sink: uploader.FileSink{Dir: b.dir}, Enqueuer: b.cl, Jobs: failingRemover{}, Logger: zerolog.Nop()})
	r := b.createRun(t, "r1", "cloud")
	b.enqueueDeadline(t, r, r.Deadline)
	if err := h.Collect(ctx, collectTask("r1", "cloud")); err != nil {
		t.Fatal(err)
	}
	if err := h.Finalize(ctx, runTask("r1", jobs.TypeFinalize, jobs.ReasonComplete)); err != nil {
		t.Fatalf("finalize failed because the removal did: %v", err)
	}
	if got, _ := b.st.Get(ctx, "r1"); got.Status != run.StatusSealed {
		t.Errorf("run %s, want sealed", got.Status)
	}
	if ids := b.scheduledControl(t); len(ids) != 1 {
		t.Errorf("scheduled = %v, want the deadline job left in place", ids)
	}
}

type failingRemover struct{}

func (failingRemover) GetTaskInfo(string, string) (*asynq.TaskInfo, error) {
	return nil, errors.New("redis: connection refused")
}
func (failingRemover) DeleteTask(string, string) error {
	return errors.New("redis: connection refused")
}

// The deadline's own finalize seals the run and leaves its own job alone,
// whether asynq names it in the context or not.
func TestDeadlineSealKeepsItsOwnJob(t *testing.T) {
	b := setup(t, fakeSource{}, nil)
	ctx := context.Background()
	r := b.createRun(t, "r1", "cloud", "host")
	b.enqueueDeadline(t, r, r.Deadline)
	if err := b.h.Collect(ctx, collectTask("r1", "cloud")); err != nil {
		t.Fatal(err)
	}
	if err := b.h.Finalize(ctx, runTask("r1", jobs.TypeFinalize, jobs.ReasonDeadline)); err != nil {
		t.Fatal(err)
	}
	got, _ := b.st.Get(ctx, "r1")
	if got.Status != run.StatusSealed || got.CloseReason != run.ReasonDeadline {
		t.Fatalf("run = %s (%s), want sealed by the deadline", got.Status, got.CloseReason)
	}
	if ids := b.scheduledControl(t); len(ids) != 1 || ids[0] != jobs.FinalizeID("", "r1", jobs.ReasonDeadline) {
		t.Errorf("scheduled = %v, want the deadline job untouched", ids)
	}
}
