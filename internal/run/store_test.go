package run_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/testenv"
)

func setup(t *testing.T, limit int) (*run.Store, context.Context) {
	t.Helper()
	rdb, _ := testenv.RedisDB(t)
	return run.NewStore(rdb, keys.New(""), time.Hour, limit), context.Background()
}

func newRun(id string, kind run.Kind, created time.Time, tasks ...string) run.Run {
	return run.Run{ID: id, Trigger: "manual", Kind: kind, CreatedAt: created, Deadline: created.Add(time.Minute), Tasks: tasks, Indices: config.DefaultIndices()}
}

func mustCreate(t *testing.T, s *run.Store, r run.Run) {
	t.Helper()
	if created, err := s.Create(context.Background(), r); err != nil || !created {
		t.Fatalf("create %s: %v %v", r.ID, created, err)
	}
}

// finish records ok for every task and seals the run; it returns the sealed run.
func finish(t *testing.T, s *run.Store, id string, skip run.SkipReason) run.Run {
	t.Helper()
	ctx := context.Background()
	r, err := s.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	good := map[string]json.RawMessage{}
	for _, task := range r.Tasks {
		res := json.RawMessage(fmt.Sprintf(`{"%s":{"run":%q}}`, task, id))
		if _, err := s.Record(ctx, id, run.TaskRecord{Task: task, Status: run.TaskOK, Attempt: 1, Result: res}); err != nil {
			t.Fatal(err)
		}
		good[task] = res
	}
	if _, err := s.Close(ctx, id, run.ReasonComplete, time.Now()); err != nil {
		t.Fatal(err)
	}
	// Every sealed run has plugin objects, so the trim test sees that key go too.
	if ok, err := s.Seal(ctx, r, run.Seal{At: time.Now(), Snapshot: []byte(`{"run":"` + id + `"}`), LastGood: good, Skip: skip,
		Plugins: []byte(`{"ui_counters":{"dailyEvents":[]},"application_usage":{"run":"` + id + `"}}`)}); err != nil || !ok {
		t.Fatalf("seal %s: %v %v", id, ok, err)
	}
	r, _ = s.Get(ctx, id)
	return r
}

func TestCreateIsIdempotent(t *testing.T) {
	s, ctx := setup(t, 10)
	now := time.Now().Truncate(time.Millisecond)
	mustCreate(t, s, newRun("r1", run.KindFull, now, "a", "b"))
	created, err := s.Create(ctx, newRun("r1", run.KindPartial, now.Add(time.Hour), "x"))
	if err != nil || created {
		t.Fatalf("second create should be a no-op: %v %v", created, err)
	}
	r, err := s.Get(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != run.StatusOpen || r.Kind != run.KindFull || len(r.Tasks) != 2 || !r.CreatedAt.Equal(now) ||
		r.Indices != config.DefaultIndices() || r.Source != keys.DefaultSource || r.Upload.State != run.UploadPending {
		t.Errorf("run = %+v", r)
	}
	if _, err := s.Create(ctx, newRun("bad{id}", run.KindFull, now)); err == nil {
		t.Error("invalid run id accepted")
	}
	if _, err := s.Create(ctx, newRun("r2", run.Kind("weekly"), now)); err == nil {
		t.Error("invalid kind accepted")
	}
}

func TestRecordCompletesOnceUnderConcurrency(t *testing.T) {
	s, ctx := setup(t, 10)
	tasks := []string{"a", "b", "c", "d", "e", "f"}
	mustCreate(t, s, newRun("r1", run.KindFull, time.Now(), tasks...))
	// Every task is recorded by 4 concurrent "workers" (at-least-once delivery).
	var mu sync.Mutex
	completed, stored, dup := 0, 0, 0
	var wg sync.WaitGroup
	for _, task := range tasks {
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o, err := s.Record(ctx, "r1", run.TaskRecord{Task: task, Status: run.TaskOK, Attempt: 1, Worker: fmt.Sprint(w), Result: json.RawMessage(`{"x":1}`)})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if o.Completed {
					completed++
				}
				if o.Stored {
					stored++
				}
				if o.Duplicate {
					dup++
				}
			}()
		}
	}
	wg.Wait()
	if completed != 1 || stored != len(tasks) || dup != 3*len(tasks) {
		t.Errorf("completed=%d stored=%d duplicates=%d; want 1, %d, %d", completed, stored, dup, len(tasks), 3*len(tasks))
	}
}

func TestStartRecordsAttemptsForATimeline(t *testing.T) {
	s, ctx := setup(t, 10)
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	r := newRun("r1", run.KindFull, t0, "a", "b")
	mustCreate(t, s, r)
	so, err := s.Start(ctx, r, "a", 1, 3, "w1", t0.Add(time.Second))
	if err != nil || !so.Started || so.Remaining != 2 {
		t.Fatalf("start: %+v %v", so, err)
	}
	if so.Record.Status != run.TaskRunning || !so.Record.QueuedAt.Equal(t0) || so.Record.Worker != "w1" || so.Record.MaxAttempts != 3 {
		t.Errorf("running record %+v", so.Record)
	}
	rec := so.Record
	rec.Status, rec.Error, rec.FinishedAt = run.TaskRetrying, "503", t0.Add(2*time.Second)
	if o, err := s.Record(ctx, "r1", rec); err != nil || !o.Stored || o.Remaining != 2 {
		t.Fatalf("retrying: %+v %v", o, err)
	}
	so, err = s.Start(ctx, r, "a", 2, 3, "w2", t0.Add(5*time.Second))
	if err != nil || !so.Started {
		t.Fatal(so, err)
	}
	// A retry was queued when its previous attempt ended, and carries its error.
	if !so.Record.QueuedAt.Equal(t0.Add(2*time.Second)) || so.Record.LastError != "503" || so.Record.Attempt != 2 {
		t.Errorf("second attempt %+v", so.Record)
	}
	rec = so.Record
	rec.Status, rec.TookMS, rec.FinishedAt, rec.Result = run.TaskOK, 7, t0.Add(6*time.Second), json.RawMessage(`{}`)
	if o, _ := s.Record(ctx, "r1", rec); o.Remaining != 1 {
		t.Errorf("final: %+v", o)
	}
	// A re-delivery of the finished task starts nothing.
	if so, _ := s.Start(ctx, r, "a", 3, 3, "w3", t0.Add(7*time.Second)); !so.AlreadyFinal || so.Remaining != 1 {
		t.Errorf("re-delivery: %+v", so)
	}
	att, err := s.Attempts(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(att) != 2 || att[0].Worker != "w1" || att[0].Status != run.TaskRetrying || att[1].Worker != "w2" ||
		att[1].Status != run.TaskOK || !att[1].StartedAt.Equal(t0.Add(5*time.Second)) || !att[1].FinishedAt.Equal(t0.Add(6*time.Second)) {
		t.Errorf("attempts %+v", att)
	}
}

func TestCloseThenLateResults(t *testing.T) {
	s, ctx := setup(t, 10)
	r := newRun("r1", run.KindFull, time.Now(), "a", "b")
	mustCreate(t, s, r)
	o, err := s.Close(ctx, "r1", run.ReasonDeadline, time.Now())
	if err != nil || !o.ClosedNow || o.Reason != run.ReasonDeadline {
		t.Fatalf("close: %+v %v", o, err)
	}
	if o, _ := s.Close(ctx, "r1", run.ReasonComplete, time.Now()); o.ClosedNow || o.Reason != run.ReasonDeadline || o.Status != run.StatusClosed {
		t.Errorf("second close %+v: the first closer's reason is the run's", o)
	}
	if ro, _ := s.Record(ctx, "r1", run.TaskRecord{Task: "b", Status: run.TaskOK, Attempt: 1}); !ro.NotOpen || ro.Stored {
		t.Errorf("late record after close: %+v", ro)
	}
	if so, _ := s.Start(ctx, r, "a", 1, 1, "w", time.Now()); !so.NotOpen {
		t.Errorf("start after close: %+v", so)
	}
	if _, err := s.Close(ctx, "nosuch", run.ReasonDeadline, time.Now()); !errors.Is(err, run.ErrNotFound) {
		t.Errorf("close of missing run: %v", err)
	}
}

func TestSealIsOnceAndOnlyFullRunsBecomeLatest(t *testing.T) {
	s, ctx := setup(t, 10)
	t0 := time.Now().Add(-time.Hour)
	mustCreate(t, s, newRun("full", run.KindFull, t0, "a"))
	mustCreate(t, s, newRun("partial", run.KindPartial, t0.Add(time.Minute), "a"))
	mustCreate(t, s, newRun("dry", run.KindDryRun, t0.Add(2*time.Minute), "a"))
	full := finish(t, s, "full", "")
	partial := finish(t, s, "partial", run.SkipPartial)
	dry := finish(t, s, "dry", run.SkipDryRun)
	if full.Status != run.StatusSealed || full.SealedAt.IsZero() || full.Upload.State != run.UploadPending {
		t.Errorf("full %+v", full)
	}
	if partial.Upload.State != run.UploadSkipped || partial.Upload.String() != "skipped (partial)" || dry.Upload.String() != "skipped (dry run)" {
		t.Errorf("partial %v, dry %v", partial.Upload, dry.Upload)
	}
	if id, _, _ := s.Latest(ctx); id != "full" {
		t.Errorf("latest = %s, want the full run", id)
	}
	// The partial and dry runs were newer: their good values are the last good ones.
	lg, _ := s.LastGood(ctx)
	if string(lg["a"]) != `{"a":{"run":"dry"}}` {
		t.Errorf("last good %s", lg["a"])
	}
	// Sealing again changes nothing.
	if ok, err := s.Seal(ctx, full, run.Seal{At: time.Now(), Snapshot: []byte(`{"x":1}`)}); ok || err != nil {
		t.Errorf("second seal: %v %v", ok, err)
	}
	if b, _ := s.Snapshot(ctx, "full"); string(b) != `{"run":"full"}` {
		t.Errorf("snapshot changed by a second seal: %s", b)
	}
	// A late older full run does not take latest or last good values.
	mustCreate(t, s, newRun("older", run.KindFull, t0.Add(-time.Minute), "a"))
	finish(t, s, "older", "")
	if id, _, _ := s.Latest(ctx); id != "full" {
		t.Errorf("latest = %s after an older run sealed", id)
	}
	if lg, _ := s.LastGood(ctx); string(lg["a"]) != `{"a":{"run":"dry"}}` {
		t.Errorf("last good overwritten by an older run: %s", lg["a"])
	}
}

func TestCancel(t *testing.T) {
	s, ctx := setup(t, 10)
	r := newRun("r1", run.KindFull, time.Now(), "a", "b", "c")
	mustCreate(t, s, r)
	if _, err := s.Record(ctx, "r1", run.TaskRecord{Task: "a", Status: run.TaskOK, Attempt: 1, Result: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	so, _ := s.Start(ctx, r, "b", 1, 2, "w1", time.Now())
	if !so.Started {
		t.Fatal(so)
	}
	if err := s.Cancel(ctx, "r1", time.Now()); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(ctx, "r1")
	if got.Status != run.StatusCancelled || got.CloseReason != run.ReasonCancelled || got.Upload.String() != "skipped (cancelled)" {
		t.Errorf("cancelled run %+v", got)
	}
	res, _ := s.Results(ctx, "r1")
	if res["a"].Status != run.TaskOK || res["b"].Status != run.TaskCancelled || res["b"].Worker != "w1" ||
		res["c"].Status != run.TaskCancelled || res["c"].Deadline != run.DeadlineCancel {
		t.Errorf("results %+v", res)
	}
	att, _ := s.Attempts(ctx, "r1")
	if len(att) != 2 || att[0].Task != "b" || att[0].Status != run.TaskCancelled || att[0].FinishedAt.IsZero() || att[1].Task != "a" {
		t.Errorf("the running attempt should end as cancelled: %+v", att)
	}
	if _, _, err := s.Latest(ctx); !errors.Is(err, run.ErrNotFound) {
		t.Errorf("a cancelled run became latest: %v", err)
	}
	var se *run.StateError
	if err := s.Cancel(ctx, "r1", time.Now()); !errors.As(err, &se) || se.Status != run.StatusCancelled {
		t.Errorf("second cancel: %v", err)
	}
	mustCreate(t, s, newRun("r2", run.KindFull, time.Now(), "a"))
	finish(t, s, "r2", "")
	err := s.Cancel(ctx, "r2", time.Now())
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "already finalized") {
		t.Errorf("cancel of a sealed run: %v", err)
	}
	if err := s.Cancel(ctx, "nosuch", time.Now()); !errors.Is(err, run.ErrNotFound) {
		t.Errorf("cancel of a missing run: %v", err)
	}
}

func TestUploadTransitions(t *testing.T) {
	s, ctx := setup(t, 10)
	mustCreate(t, s, newRun("r1", run.KindFull, time.Now(), "a"))
	var se *run.StateError
	if err := s.UploadRetrying(ctx, "r1", 1, 3, "x", time.Now()); !errors.As(err, &se) {
		t.Errorf("upload of an open run moved: %v", err)
	}
	finish(t, s, "r1", "")
	if err := s.UploadRetrying(ctx, "r1", 1, 3, "503 Service Unavailable", time.Now()); err != nil {
		t.Fatal(err)
	}
	r, _ := s.Get(ctx, "r1")
	if r.Upload.State != run.UploadRetrying || r.Upload.Attempt != 1 || r.Upload.MaxAttempts != 3 || r.Upload.String() != "retrying 1/3" || r.Upload.Error == "" {
		t.Errorf("retrying %+v", r.Upload)
	}
	if err := s.UploadFailed(ctx, "r1", 3, 3, "window spent", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.UploadDelivered(ctx, "r1", run.UploadUploaded, 4, "idx/doc", time.Now()); !errors.As(err, &se) || se.Upload != run.UploadFailed {
		t.Errorf("a failed upload delivered without a re-send: %v", err)
	}
	since := time.Now().Add(time.Hour)
	if err := s.UploadResend(ctx, "r1", since); err != nil {
		t.Fatal(err)
	}
	r, _ = s.Get(ctx, "r1")
	if r.Upload.State != run.UploadPending || !r.Upload.Since.Equal(since.UTC().Truncate(time.Nanosecond)) && r.Upload.Since.Sub(since).Abs() > time.Millisecond {
		t.Errorf("re-send %+v", r.Upload)
	}
	if err := s.UploadDelivered(ctx, "r1", run.UploadUploaded, 1, "idx/doc", time.Now()); err != nil {
		t.Fatal(err)
	}
	pu, _ := s.PendingUploads(ctx, 10)
	if len(pu) != 0 {
		t.Errorf("pending uploads %v", pu)
	}
}

func TestTrimKeepsLatestOpenAndOutstandingRuns(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	s, ctx := run.NewStore(rdb, keys.New(""), time.Hour, 1), context.Background()
	t0 := time.Now()
	mustCreate(t, s, newRun("a", run.KindFull, t0, "x"))
	finish(t, s, "a", "")
	if err := s.UploadDelivered(ctx, "a", run.UploadUploaded, 1, "i/d", time.Now()); err != nil {
		t.Fatal(err)
	}
	// Limit 1, a finished run A (latest) and a running run B: both stay.
	mustCreate(t, s, newRun("b", run.KindFull, t0.Add(time.Second), "x"))
	if _, err := s.Get(ctx, "a"); err != nil {
		t.Fatalf("trim removed the latest snapshot's run: %v", err)
	}
	if _, err := s.Snapshot(ctx, "a"); err != nil {
		t.Fatalf("latest snapshot gone: %v", err)
	}
	// B sealed with its upload pending: A is no longer latest, but B's upload
	// is outstanding; A goes, B stays.
	finish(t, s, "b", "")
	if _, err := s.Get(ctx, "a"); !errors.Is(err, run.ErrNotFound) {
		t.Errorf("a should be trimmed: %v", err)
	}
	// A partial run C leaves at its own seal; a cancelled D at the next
	// trim; B is latest and stays.
	mustCreate(t, s, newRun("c", run.KindPartial, t0.Add(2*time.Second), "x"))
	finish(t, s, "c", run.SkipPartial)
	mustCreate(t, s, newRun("d", run.KindFull, t0.Add(3*time.Second), "x"))
	if err := s.Cancel(ctx, "d", time.Now()); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Trim(ctx); err != nil || n != 1 {
		t.Errorf("trim removed %d, %v; want d", n, err)
	}
	runs, _ := s.List(ctx, 10)
	if len(runs) != 1 || runs[0].ID != "b" {
		t.Errorf("history %+v", runs)
	}
	for _, id := range []string{"a", "c", "d"} {
		if n, _ := rdb.Exists(ctx, s.Keys().RunKeys(id)...).Result(); n != 0 {
			t.Errorf("%d keys of trimmed run %s left behind", n, id)
		}
	}
}

func TestCorruptDataIsReportedNotLost(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	ks := keys.New("")
	s := run.NewStore(rdb, ks, time.Hour, 10)
	ctx := context.Background()
	mustCreate(t, s, newRun("r1", run.KindFull, time.Now(), "a", "b"))
	rdb.HSet(ctx, ks.Results("r1"), "a", "{not json")
	res, err := s.Results(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if res["a"].Status != run.TaskFailed || !strings.Contains(res["a"].Error, "corrupt record") {
		t.Errorf("corrupt record = %+v", res["a"])
	}
	rdb.HSet(ctx, ks.Run("r1"), "tasks", "[broken")
	if _, err := s.Get(ctx, "r1"); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("corrupt run metadata not reported: %v", err)
	}
	runs, _ := s.List(ctx, 10)
	if len(runs) != 1 || !strings.HasPrefix(string(runs[0].Status), "corrupt") {
		t.Errorf("a corrupt run must still be listed: %+v", runs)
	}
}

// The seal stores the other plugins' objects beside the snapshot, with the
// run's TTL; a run sealed without any reads as none, not as an error.
func TestSealStoresPluginObjects(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	s, ctx := run.NewStore(rdb, keys.New(""), time.Hour, 10), context.Background()
	mustCreate(t, s, newRun("p1", run.KindFull, time.Now(), "a"))
	finish(t, s, "p1", "")
	got, err := s.Plugins(ctx, "p1")
	if err != nil || len(got) != 2 || string(got["application_usage"]) != `{"run":"p1"}` || string(got["ui_counters"]) != `{"dailyEvents":[]}` {
		t.Fatalf("plugins %v, %v", got, err)
	}
	if b, _ := s.Snapshot(ctx, "p1"); string(b) != `{"run":"p1"}` {
		t.Errorf("the snapshot stays the apm object: %s", b)
	}
	if ttl := rdb.PTTL(ctx, s.Keys().Plugins("p1")).Val(); ttl <= 0 {
		t.Errorf("plugins key has no TTL (%v)", ttl)
	}
	mustCreate(t, s, newRun("p2", run.KindFull, time.Now(), "a"))
	if _, err := s.Close(ctx, "p2", run.ReasonComplete, time.Now()); err != nil {
		t.Fatal(err)
	}
	r, _ := s.Get(ctx, "p2")
	if ok, err := s.Seal(ctx, r, run.Seal{At: time.Now(), Snapshot: []byte(`{}`)}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if got, err := s.Plugins(ctx, "p2"); err != nil || len(got) != 0 {
		t.Errorf("run without plugin objects: %v, %v", got, err)
	}
	if n := rdb.Exists(ctx, s.Keys().Plugins("p2")).Val(); n != 0 {
		t.Error("an empty plugins key was written")
	}
}

// A worker paused past its lease leaves its attempt "running" while another
// attempt finishes the task: the seal closes it as abandoned, with the
// reason and the seal time, and its late record is refused; no attempt of a
// sealed run is running.
func TestSealAbandonsRunningAttempts(t *testing.T) {
	s, ctx := setup(t, 10)
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	r := newRun("r1", run.KindPartial, t0, "a", "b")
	mustCreate(t, s, r)
	paused, err := s.Start(ctx, r, "a", 1, 3, "w-paused", t0.Add(time.Second))
	if err != nil || !paused.Started {
		t.Fatal(paused, err)
	}
	so, err := s.Start(ctx, r, "a", 2, 3, "w2", t0.Add(40*time.Second))
	if err != nil || !so.Started {
		t.Fatal(so, err)
	}
	rec := so.Record
	rec.Status, rec.FinishedAt, rec.Result = run.TaskOK, t0.Add(41*time.Second), json.RawMessage(`{}`)
	if _, err := s.Record(ctx, "r1", rec); err != nil {
		t.Fatal(err)
	}
	// b's only attempt is running when the deadline closes the run; the
	// finalizer records it as unfinished (timeout) with its attempt.
	sb, err := s.Start(ctx, r, "b", 1, 3, "w3", t0.Add(2*time.Second))
	if err != nil || !sb.Started {
		t.Fatal(sb, err)
	}
	if _, err := s.Close(ctx, "r1", run.ReasonDeadline, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	unfinished := sb.Record
	unfinished.Status, unfinished.Deadline, unfinished.FinishedAt = run.TaskTimeout, run.DeadlineClosed, t0.Add(time.Minute)
	sealAt := t0.Add(time.Minute + time.Second)
	if ok, err := s.Seal(ctx, r, run.Seal{At: sealAt, Snapshot: []byte(`{}`), Unfinished: []run.TaskRecord{unfinished}}); err != nil || !ok {
		t.Fatal(ok, err)
	}
	att, err := s.Attempts(ctx, "r1")
	if err != nil || len(att) != 3 {
		t.Fatalf("attempts %+v %v", att, err)
	}
	want := map[string]run.TaskStatus{"a#1": run.TaskAbandoned, "a#2": run.TaskOK, "b#1": run.TaskTimeout}
	for _, a := range att {
		key := fmt.Sprintf("%s#%d", a.Task, a.Attempt)
		if a.Status != want[key] || a.FinishedAt.IsZero() {
			t.Errorf("%s: %+v, want %s and finished", key, a, want[key])
		}
		if key == "a#1" && (a.Error != run.AbandonedReason || !a.FinishedAt.Equal(sealAt) || a.Worker != "w-paused" ||
			!a.StartedAt.Equal(t0.Add(time.Second))) {
			t.Errorf("abandoned attempt %+v: want the reason, the seal time, its worker and start", a)
		}
	}
	// The paused worker wakes up and records: refused, nothing changes.
	late := paused.Record
	late.Status, late.FinishedAt = run.TaskOK, t0.Add(2*time.Minute)
	if o, err := s.Record(ctx, "r1", late); err != nil || !o.NotOpen {
		t.Errorf("late record: %+v %v", o, err)
	}
	if att, _ := s.Attempts(ctx, "r1"); att[0].Status != run.TaskAbandoned {
		t.Errorf("after the late record: %+v", att[0])
	}
}
