package run_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/run"
)

func TestErrandIsItsOwnEntryAndStoresTheSourceOnce(t *testing.T) {
	s, ctx := setup(t, 10)
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	mustCreate(t, s, newRun("r1", run.KindFull, t0, "a"))
	running := run.Errand{Name: run.ErrandSourceIdentity, Status: run.TaskRunning, Worker: "w1", StartedAt: t0}
	if err := s.RecordErrand(ctx, "r1", running, nil); err != nil {
		t.Fatal(err)
	}
	r, _ := s.Get(ctx, "r1")
	if e, ok := r.Errand(run.ErrandSourceIdentity); !ok || e.Status != run.TaskRunning || len(r.SourceInfo) != 0 {
		t.Fatalf("running errand %+v, source %s", r.Errands, r.SourceInfo)
	}
	done := running
	done.Status, done.FinishedAt, done.TookMS = run.TaskOK, t0.Add(210*time.Millisecond), 210
	done.RequestStats = run.RequestStats{Requests: 6, SlotWaitMS: 12, SlotWaitMaxMS: 4, RequestMS: 1200, AtSourceMS: 205}
	if err := s.RecordErrand(ctx, "r1", done, json.RawMessage(`{"cluster_uuid":"u1"}`)); err != nil {
		t.Fatal(err)
	}
	// A second capture (a retried first task) updates the entry but keeps the first identity.
	if err := s.RecordErrand(ctx, "r1", done, json.RawMessage(`{"cluster_uuid":"u2"}`)); err != nil {
		t.Fatal(err)
	}
	r, _ = s.Get(ctx, "r1")
	if want := []run.Errand{done}; !reflect.DeepEqual(want, r.Errands) {
		t.Errorf("errands\n got %+v\nwant %+v", r.Errands, want)
	}
	if string(r.SourceInfo) != `{"cluster_uuid":"u1"}` {
		t.Errorf("source info %s", r.SourceInfo)
	}
	// Bad input: a clear error, nothing written.
	if err := s.RecordErrand(ctx, "r1", run.Errand{Name: "x"}, json.RawMessage(`{`)); err == nil {
		t.Error("invalid source info accepted")
	}
	if err := s.RecordErrand(ctx, "gone", done, nil); !errors.Is(err, run.ErrNotFound) {
		t.Errorf("errand of a missing run: %v", err)
	}
	if r, _ := s.Get(ctx, "r1"); len(r.Errands) != 1 {
		t.Errorf("errands after bad input %+v", r.Errands)
	}
}

func TestRefusalsAreRememberedPerSource(t *testing.T) {
	s, ctx := setup(t, 10)
	if s.Refused(ctx, "cluster_stats.include_remotes") {
		t.Fatal("refused before any refusal")
	}
	s.NoteRefused(ctx, "cluster_stats.include_remotes")
	if !s.Refused(ctx, "cluster_stats.include_remotes") || s.Refused(ctx, "other") {
		t.Error("refusal not remembered, or remembered for another parameter")
	}
}

func TestBreakdownAddsUpToTheWallTime(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	r := run.Run{ID: "r", Kind: run.KindFull, CreatedAt: t0, Tasks: []string{"a", "b", "c"},
		ClosedAt: at(1900), SealedAt: at(1950), Upload: run.Upload{State: run.UploadWritten, At: at(2000)},
		Errands: []run.Errand{{Name: run.ErrandSourceIdentity, Status: run.TaskOK, StartedAt: at(100), FinishedAt: at(900), TookMS: 800}}}
	attempts := []run.Attempt{
		// a: first task, its job held by the errand until 900.
		{Task: "a", Attempt: 1, Worker: "w1", Status: run.TaskOK, QueuedAt: t0, StartedAt: at(100), FinishedAt: at(900), TookMS: 600,
			RequestStats: run.RequestStats{Requests: 4, CapOnlyMS: 100, AtSourceMS: 450}},
		// b: a retry; the final attempt queued at 500 when the first failed.
		{Task: "b", Attempt: 1, Worker: "w2", Status: run.TaskRetrying, QueuedAt: t0, StartedAt: at(100), FinishedAt: at(500), TookMS: 400},
		{Task: "b", Attempt: 2, Worker: "w2", Status: run.TaskOK, QueuedAt: at(500), StartedAt: at(600), FinishedAt: at(800), TookMS: 200},
		// c: waited for w1's slot (a finished at 900), picked up 50 ms later,
		// and is the last to finish: the critical task.
		{Task: "c", Attempt: 1, Worker: "w1", Status: run.TaskOK, QueuedAt: t0, StartedAt: at(950), FinishedAt: at(1850), TookMS: 900,
			RequestStats: run.RequestStats{Requests: 10, SlotWaitMS: 3000, SlotWaitMaxMS: 400, RequestMS: 2000, CapOnlyMS: 300, AtSourceMS: 550}},
	}
	b := run.BreakdownOf(r, attempts)
	want := []run.Step{
		{Name: run.StepPickup, MS: 50}, {Name: run.StepJobSlot, MS: 900},
		{Name: run.StepCapOnly, MS: 300}, {Name: run.StepAtSource, MS: 550}, {Name: run.StepOwnWork, MS: 50},
		{Name: run.StepErrand, MS: 0},
		{Name: run.StepRecord, MS: 50}, {Name: run.StepFinalize, MS: 50}, {Name: run.StepUpload, MS: 50},
	}
	if !reflect.DeepEqual(want, b.Steps) {
		t.Errorf("steps\n got %+v\nwant %+v", b.Steps, want)
	}
	var sum int64
	for _, s := range b.Steps {
		sum += s.MS
	}
	if b.Critical != "c" || b.WallMS != 2000 || sum != b.WallMS {
		t.Errorf("critical %q, wall %d ms, steps sum %d ms", b.Critical, b.WallMS, sum)
	}
	if len(b.Tasks) != 3 || b.Tasks[1].Task != "b" || b.Tasks[1].Attempt != 2 || b.Tasks[1].PickupMS != 100 || b.Tasks[1].JobSlotMS != 0 {
		t.Errorf("task shares %+v", b.Tasks)
	}
	if got := b.SortedByEnd(); got[0].Task != "c" || got[2].Task != "b" {
		t.Errorf("sorted by end %+v", got)
	}
	// The first task's job ends with the errand: held 200 ms.
	b = run.BreakdownOf(run.Run{CreatedAt: t0, Tasks: []string{"a"}}, attempts[:1])
	if b.Critical != "a" || b.Steps[5] != (run.Step{Name: run.StepErrand, MS: 200}) || len(b.Steps) != 6 || b.WallMS != 0 {
		t.Errorf("open run: %+v", b)
	}
}
