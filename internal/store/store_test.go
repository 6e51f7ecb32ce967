package store_test

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
	"github.com/apmtel/apmtel/internal/store"
	"github.com/apmtel/apmtel/internal/testenv"
)

func setup(t *testing.T, limit int) (*store.Store, context.Context) {
	t.Helper()
	rdb, _ := testenv.RedisDB(t)
	return store.New(rdb, keys.New(""), time.Hour, limit), context.Background()
}

func newRun(id string, created time.Time, tasks ...string) store.Run {
	return store.Run{ID: id, Trigger: "manual", CreatedAt: created, Deadline: created.Add(time.Minute), Tasks: tasks, Indices: config.DefaultIndices()}
}

func TestCreateRunIsIdempotent(t *testing.T) {
	s, ctx := setup(t, 10)
	now := time.Now().Truncate(time.Millisecond)
	created, err := s.CreateRun(ctx, newRun("r1", now, "a", "b"))
	if err != nil || !created {
		t.Fatalf("first create: %v %v", created, err)
	}
	created, err = s.CreateRun(ctx, newRun("r1", now.Add(time.Hour), "x"))
	if err != nil || created {
		t.Fatalf("second create should be a no-op: %v %v", created, err)
	}
	r, err := s.GetRun(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != store.StatusRunning || len(r.Tasks) != 2 || !r.CreatedAt.Equal(now) || r.Indices != config.DefaultIndices() {
		t.Errorf("run = %+v", r)
	}
	if _, err := s.CreateRun(ctx, newRun("bad{id}", now)); err == nil {
		t.Error("invalid run id accepted")
	}
}

func TestRecordCompletesOnceUnderConcurrency(t *testing.T) {
	s, ctx := setup(t, 10)
	tasks := []string{"a", "b", "c", "d", "e", "f"}
	if _, err := s.CreateRun(ctx, newRun("r1", time.Now(), tasks...)); err != nil {
		t.Fatal(err)
	}
	// Every task is recorded by 4 concurrent "workers" (at-least-once delivery).
	var mu sync.Mutex
	completed, stored, dup := 0, 0, 0
	var wg sync.WaitGroup
	for _, task := range tasks {
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o, err := s.Record(ctx, "r1", store.TaskRecord{Task: task, Status: store.TaskOK, Worker: fmt.Sprint(w), Result: json.RawMessage(`{"x":1}`)})
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
	res, err := s.Results(ctx, "r1")
	if err != nil || len(res) != len(tasks) {
		t.Fatalf("results %v %v", res, err)
	}
}

func TestRetryingThenFinalAndClosedRun(t *testing.T) {
	s, ctx := setup(t, 10)
	if _, err := s.CreateRun(ctx, newRun("r1", time.Now(), "a", "b")); err != nil {
		t.Fatal(err)
	}
	o, _ := s.Record(ctx, "r1", store.TaskRecord{Task: "a", Status: store.TaskRetrying, Error: "boom"})
	if !o.Stored || o.Remaining != 2 || o.Completed {
		t.Errorf("retrying record: %+v", o)
	}
	o, _ = s.Record(ctx, "r1", store.TaskRecord{Task: "a", Status: store.TaskFailed, Error: "boom"})
	if !o.Stored || o.Remaining != 1 {
		t.Errorf("final record: %+v", o)
	}
	closed, err := s.Close(ctx, "r1", "deadline", time.Now())
	if err != nil || !closed {
		t.Fatalf("close: %v %v", closed, err)
	}
	if closed, _ := s.Close(ctx, "r1", "complete", time.Now()); closed {
		t.Error("second close reported closing")
	}
	o, _ = s.Record(ctx, "r1", store.TaskRecord{Task: "b", Status: store.TaskOK})
	if !o.RunNotRunning || o.Stored {
		t.Errorf("late record after close: %+v", o)
	}
	res, _ := s.Results(ctx, "r1")
	if _, ok := res["b"]; ok {
		t.Error("late result was stored")
	}
	if _, err := s.Close(ctx, "nosuch", "deadline", time.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("close of missing run: %v", err)
	}
}

func TestLatestAndLastGoodKeepNewest(t *testing.T) {
	s, ctx := setup(t, 10)
	t0 := time.Now().Add(-time.Hour)
	older, newer := newRun("old", t0, "a"), newRun("new", t0.Add(time.Minute), "a")
	for _, r := range []store.Run{older, newer} {
		if _, err := s.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutSnapshot(ctx, newer, []byte(`{"n":2}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetLastGood(ctx, newer, map[string]json.RawMessage{"a": json.RawMessage(`{"v":2}`)}); err != nil {
		t.Fatal(err)
	}
	// The older run finalizes late: it must not replace the newer values.
	if err := s.PutSnapshot(ctx, older, []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetLastGood(ctx, older, map[string]json.RawMessage{"a": json.RawMessage(`{"v":1}`)}); err != nil {
		t.Fatal(err)
	}
	id, _, err := s.Latest(ctx)
	if err != nil || id != "new" {
		t.Errorf("latest = %q, %v", id, err)
	}
	lg, _ := s.LastGood(ctx)
	if string(lg["a"]) != `{"v":2}` {
		t.Errorf("last good = %s", lg["a"])
	}
	b, _ := s.Snapshot(ctx, "old")
	if string(b) != `{"n":1}` {
		t.Errorf("old snapshot = %s", b)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	s, ctx := setup(t, 3)
	t0 := time.Now()
	// r0 is still running: it must survive however many runs follow.
	for i := 0; i < 6; i++ {
		r := newRun(fmt.Sprintf("r%d", i), t0.Add(time.Duration(i)*time.Second), "a")
		if _, err := s.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		_ = s.PutSnapshot(ctx, r, []byte(`{}`))
		if i > 0 {
			_ = s.SetFields(ctx, r.ID, "status", store.StatusFinalized, "upload", "uploaded")
		}
	}
	runs, err := s.ListRuns(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range runs {
		ids = append(ids, r.ID)
	}
	if strings.Join(ids, ",") != "r5,r4,r3,r0" {
		t.Errorf("runs = %v, want r5,r4,r3 and the running r0", ids)
	}
	if _, err := s.GetRun(ctx, "r1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("trimmed run still there: %v", err)
	}
	// Finalized with its upload still pending: kept.
	_ = s.SetFields(ctx, "r0", "status", store.StatusFinalized)
	if err := s.Trim(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRun(ctx, "r0"); err != nil {
		t.Errorf("r0 with a pending upload was trimmed: %v", err)
	}
	// Uploaded: the next trim drops it.
	_ = s.SetFields(ctx, "r0", "upload", "uploaded")
	if err := s.Trim(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRun(ctx, "r0"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("finalized r0 not trimmed: %v", err)
	}
}

func TestCorruptDataIsReportedNotLost(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	ks := keys.New("")
	s := store.New(rdb, ks, time.Hour, 10)
	ctx := context.Background()
	if _, err := s.CreateRun(ctx, newRun("r1", time.Now(), "a", "b")); err != nil {
		t.Fatal(err)
	}
	rdb.HSet(ctx, ks.Results("r1"), "a", "{not json")
	res, err := s.Results(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if res["a"].Status != store.TaskFailed || res["a"].Error == "" {
		t.Errorf("corrupt record = %+v", res["a"])
	}
	rdb.HSet(ctx, ks.Run("r1"), "tasks", "[broken")
	if _, err := s.GetRun(ctx, "r1"); err == nil {
		t.Error("corrupt run metadata not reported")
	}
}
