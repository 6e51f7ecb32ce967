package workers_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/store"
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
	st    *store.Store
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
	st := store.New(rdb, keys.New(""), time.Hour, 50)
	dir := t.TempDir()
	h := workers.NewHandlers(workers.Deps{Config: cfg, Store: st, Registry: telemetry.Default(), Source: src,
		Sink: uploader.FileSink{Dir: dir}, Enqueuer: cl, Logger: zerolog.Nop()})
	return &bundle{h: h, st: st, insp: insp, cfg: cfg, dir: dir, cl: cl, redis: opt}
}

func (b *bundle) createRun(t *testing.T, id string, tasks ...string) store.Run {
	t.Helper()
	now := time.Now()
	r := store.Run{ID: id, Trigger: "manual", CreatedAt: now, Deadline: now.Add(time.Minute), Tasks: tasks, Indices: config.DefaultIndices()}
	if _, err := b.st.CreateRun(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

func collectTask(run, task string) *asynq.Task {
	b, _ := json.Marshal(jobs.CollectPayload{RunID: run, Task: task})
	return asynq.NewTask(jobs.TypeCollect, b)
}

func runTask(run, typ, reason string) *asynq.Task {
	b, _ := json.Marshal(jobs.RunPayload{RunID: run, Reason: reason})
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
	if ids := b.pendingControl(t); len(ids) != 1 || ids[0] != "finalize:r1:complete" {
		t.Fatalf("want one finalize job, got %v", ids)
	}
	// Finalize twice (complete and deadline): one snapshot, one upload job.
	for _, reason := range []string{"complete", "deadline"} {
		if err := b.h.Finalize(ctx, runTask("r1", jobs.TypeFinalize, reason)); err != nil {
			t.Fatal(err)
		}
	}
	run, _ := b.st.GetRun(ctx, "r1")
	if run.Status != store.StatusFinalized || run.CloseReason != "complete" {
		t.Errorf("run = %+v", run)
	}
	snap, err := b.st.Snapshot(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	_ = json.Unmarshal(snap, &got)
	if p := got["cloud"].(map[string]any)["provider"]; asJSON(p) != `["aws"]` {
		t.Errorf("cloud.provider = %v", p)
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
		if id == jobs.UploadID("r1") {
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
	run, _ = b.st.GetRun(ctx, "r1")
	if run.Upload != "written" {
		t.Errorf("upload status = %s", run.Upload)
	}
}

func TestFailedTaskKeepsLastGoodValue(t *testing.T) {
	b := setup(t, fakeSource{}, nil)
	ctx := context.Background()
	b.createRun(t, "r1", "cloud")
	_ = b.h.Collect(ctx, collectTask("r1", "cloud"))
	_ = b.h.Finalize(ctx, runTask("r1", jobs.TypeFinalize, "complete"))

	// The next run's cloud task fails permanently (a 400): no retry, and the
	// snapshot keeps the previous value without tasks.cloud.
	failing := workers.NewHandlers(workers.Deps{Config: b.cfg, Store: b.st, Registry: telemetry.Default(),
		Source: fakeSource{failFor: "_search"}, Sink: uploader.FileSink{Dir: b.dir}, Enqueuer: b.cl, Logger: zerolog.Nop()})
	time.Sleep(2 * time.Millisecond)
	b.createRun(t, "r2", "cloud")
	err := failing.Collect(ctx, collectTask("r2", "cloud"))
	if !errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), "bad field") {
		t.Fatalf("want SkipRetry with the reason, got %v", err)
	}
	if err := failing.Finalize(ctx, runTask("r2", jobs.TypeFinalize, "complete")); err != nil {
		t.Fatal(err)
	}
	snap, _ := b.st.Snapshot(ctx, "r2")
	var got map[string]any
	_ = json.Unmarshal(snap, &got)
	if _, ok := got["tasks"]; ok {
		t.Errorf("failed task has took: %s", snap)
	}
	if asJSON(got["cloud"].(map[string]any)["provider"]) != `["aws"]` {
		t.Errorf("last good value not kept: %s", snap)
	}
	run, _ := b.st.GetRun(ctx, "r2")
	var rep workers.Report
	_ = json.Unmarshal(run.Report, &rep)
	if asJSON(rep.Failed) != `["cloud"]` || asJSON(rep.CarriedOver) != `["cloud"]` || rep.Tasks["cloud"].Status != store.TaskFailed {
		t.Errorf("report = %s", run.Report)
	}
}

func TestDeadlineMarksUnfinishedTasks(t *testing.T) {
	b := setup(t, fakeSource{}, nil)
	ctx := context.Background()
	b.createRun(t, "r1", "cloud", "host")
	_ = b.h.Collect(ctx, collectTask("r1", "cloud"))
	if err := b.h.Finalize(ctx, runTask("r1", jobs.TypeFinalize, "deadline")); err != nil {
		t.Fatal(err)
	}
	res, _ := b.st.Results(ctx, "r1")
	if res["host"].Status != store.TaskTimeout || !strings.Contains(res["host"].Error, "deadline") {
		t.Errorf("host = %+v", res["host"])
	}
	// A result arriving after the deadline is dropped, not merged.
	if err := b.h.Collect(ctx, collectTask("r1", "host")); err != nil {
		t.Fatal(err)
	}
	res, _ = b.st.Results(ctx, "r1")
	if res["host"].Status != store.TaskTimeout {
		t.Errorf("late result replaced the timeout: %+v", res["host"])
	}
	// A "complete" finalize arriving afterwards changes neither the reason,
	// the records nor the payload's timestamp.
	before, _ := b.st.GetRun(ctx, "r1")
	time.Sleep(5 * time.Millisecond)
	if err := b.h.Finalize(ctx, runTask("r1", jobs.TypeFinalize, "complete")); err != nil {
		t.Fatal(err)
	}
	after, _ := b.st.GetRun(ctx, "r1")
	if after.CloseReason != "deadline" || !after.FinalizedAt.Equal(before.FinalizedAt) {
		t.Errorf("second finalize changed the run: reason %q, finalized_at %s → %s", after.CloseReason, before.FinalizedAt, after.FinalizedAt)
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
		{"unknown run", func() error { return b.h.Collect(ctx, collectTask("nosuch", "cloud")) }, "not found"},
		{"garbage finalize", func() error { return b.h.Finalize(ctx, asynq.NewTask(jobs.TypeFinalize, []byte(`[]`))) }, "bad payload"},
		{"upload of unknown run", func() error { return b.h.Upload(ctx, runTask("nosuch", jobs.TypeUpload, "")) }, "not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("want SkipRetry containing %q, got %v", tc.want, err)
			}
		})
	}
	// The run itself is unaffected and still completes.
	if err := b.h.Collect(ctx, collectTask("r1", "cloud")); err != nil {
		t.Fatal(err)
	}
	res, _ := b.st.Results(ctx, "r1")
	if res["cloud"].Status != store.TaskOK {
		t.Errorf("cloud = %+v", res["cloud"])
	}
}

func TestOptOutCollectsButDoesNotSend(t *testing.T) {
	b := setup(t, fakeSource{}, func(c *config.Config) { c.OptIn = false })
	ctx := context.Background()
	b.createRun(t, "r1", "cloud")
	_ = b.h.Collect(ctx, collectTask("r1", "cloud"))
	_ = b.h.Finalize(ctx, runTask("r1", jobs.TypeFinalize, "complete"))
	if err := b.h.Upload(ctx, runTask("r1", jobs.TypeUpload, "")); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(b.dir, "*.json"))
	run, _ := b.st.GetRun(ctx, "r1")
	if len(files) != 0 || run.Upload != "skipped" {
		t.Errorf("files=%v upload=%s", files, run.Upload)
	}
	if _, err := b.st.Snapshot(ctx, "r1"); err != nil {
		t.Errorf("snapshot should still be stored: %v", err)
	}
}

func TestAssemble(t *testing.T) {
	results := map[string]store.TaskRecord{
		"a": {Status: store.TaskOK, TookMS: 5, Result: json.RawMessage(`{"counts":{"error":{"1d":12345678901234567}}}`)},
		"b": {Status: store.TaskOK, TookMS: 6, Result: json.RawMessage(`{"counts":{"span":{"1d":2}}}`)},
		"c": {Status: store.TaskTimeout, Error: "slow"},
	}
	snap, rep, err := workers.Assemble([]string{"a", "b", "c", "d"}, results, map[string]json.RawMessage{"c": json.RawMessage(`{"c":true}`)})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(snap)
	want := `{"c":true,"counts":{"error":{"1d":12345678901234567},"span":{"1d":2}},"tasks":{"a":{"took":{"ms":5}},"b":{"took":{"ms":6}}}}`
	if string(b) != want {
		t.Errorf("snapshot %s\nwant     %s", b, want)
	}
	if asJSON(rep.Failed) != `["c","d"]` || asJSON(rep.CarriedOver) != `["c"]` {
		t.Errorf("report %+v", rep)
	}
	if _, _, err := workers.Assemble([]string{"a"}, map[string]store.TaskRecord{"a": {Status: store.TaskOK, Result: json.RawMessage(`{bad`)}}, nil); err == nil {
		t.Error("corrupt result accepted")
	}
}

func asJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// FuzzAssemble feeds arbitrary stored results to the merge: it must either
// merge them or report the corrupt one, never panic, and never invent tasks.
func FuzzAssemble(f *testing.F) {
	f.Add([]byte(`{"counts":{"error":{"1d":1}}}`), []byte(`{"counts":{"span":{"1d":2}}}`))
	f.Add([]byte(`{`), []byte(`null`))
	f.Add([]byte(`{"a":[1,2]}`), []byte(`{"a":{"b":1}}`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		results := map[string]store.TaskRecord{
			"a": {Status: store.TaskOK, Result: a},
			"b": {Status: store.TaskOK, Result: b},
		}
		snap, rep, err := workers.Assemble([]string{"a", "b"}, results, nil)
		if err != nil {
			if !strings.Contains(err.Error(), "stored result") {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(rep.Tasks) != 2 {
			t.Fatalf("report has %d tasks", len(rep.Tasks))
		}
		tasks, _ := snap["tasks"].(map[string]any)
		if len(tasks) > 2 {
			t.Fatalf("tasks %v", tasks)
		}
	})
}

// The deadline closed the run but its finalize has not finished when the
// "complete" finalize runs: the run keeps the deadline as its reason.
func TestFinalizeAfterAnotherClose(t *testing.T) {
	b := setup(t, fakeSource{}, nil)
	ctx := context.Background()
	b.createRun(t, "r1", "cloud", "host")
	_ = b.h.Collect(ctx, collectTask("r1", "cloud"))
	if _, err := b.st.Close(ctx, "r1", "deadline", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := b.h.Finalize(ctx, runTask("r1", jobs.TypeFinalize, "complete")); err != nil {
		t.Fatal(err)
	}
	r, _ := b.st.GetRun(ctx, "r1")
	host := b.results(t, "r1")["host"]
	if r.Status != store.StatusFinalized || r.CloseReason != "deadline" || !strings.Contains(host.Error, "deadline") {
		t.Errorf("run %q/%q, host %+v", r.Status, r.CloseReason, host)
	}
}

func (b *bundle) results(t *testing.T, id string) map[string]store.TaskRecord {
	t.Helper()
	res, err := b.st.Results(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return res
}
