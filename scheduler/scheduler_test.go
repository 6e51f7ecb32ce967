package scheduler_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/jobs"
	"github.com/apmtel/apmtel/scheduler"
)

func TestSlotStartAndRunID(t *testing.T) {
	tests := []struct {
		at       string
		interval time.Duration
		want     string
	}{
		{"2026-11-26T11:59:59Z", 12 * time.Hour, "sched-20261126T000000Z"},
		{"2026-11-26T12:00:00Z", 12 * time.Hour, "sched-20261126T120000Z"},
		{"2026-11-26T23:10:00Z", time.Hour, "sched-20261126T230000Z"},
		{"2026-11-26T23:10:00+02:00", time.Hour, "sched-20261126T210000Z"},
	}
	for _, tc := range tests {
		at, _ := time.Parse(time.RFC3339, tc.at)
		if got := scheduler.ScheduledRunID(scheduler.SlotStart(at, tc.interval)); got != tc.want {
			t.Errorf("%s/%s: got %s, want %s", tc.at, tc.interval, got, tc.want)
		}
	}
	a, b := scheduler.ManualRunID(time.Now()), scheduler.ManualRunID(time.Now())
	if a == b || keys.ValidRunID(a) != nil {
		t.Errorf("manual ids %s %s", a, b)
	}
}

type bundle struct {
	st   *run.Store
	insp *asynq.Inspector
	opt  asynq.RedisClientOpt
	cfg  config.Config
}

func setup(t *testing.T) *bundle {
	rdb, db := testenv.RedisDB(t)
	opt := asynq.RedisClientOpt{Addr: testenv.RedisAddr(t), DB: db}
	insp := asynq.NewInspector(opt)
	t.Cleanup(func() { insp.Close() })
	cfg := config.Default()
	return &bundle{st: run.NewStore(rdb, keys.New(""), time.Hour, 50), insp: insp, opt: opt, cfg: cfg}
}

func (b *bundle) scheduler(t *testing.T, now time.Time) *scheduler.Scheduler {
	cl := asynq.NewClient(b.opt)
	t.Cleanup(func() { cl.Close() })
	return &scheduler.Scheduler{Config: b.cfg, Runs: b.st, Registry: telemetry.Default(), Enqueuer: cl,
		Logger: zerolog.Nop(), Now: func() time.Time { return now }}
}

func TestReplicasProduceOneRun(t *testing.T) {
	b := setup(t)
	base := time.Date(2026, 11, 26, 12, 0, 5, 0, time.UTC)
	var wg sync.WaitGroup
	created := make(chan bool, 3)
	for i := 0; i < 3; i++ {
		s := b.scheduler(t, base.Add(time.Duration(i)*time.Minute)) // staggered replicas, same slot
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, c, err := s.Tick(context.Background())
			if err != nil {
				t.Error(err)
			}
			created <- c
		}()
	}
	wg.Wait()
	close(created)
	n := 0
	for c := range created {
		if c {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d schedulers created the run, want 1", n)
	}
	runs, _ := b.st.List(context.Background(), 10)
	if len(runs) != 1 || runs[0].ID != "sched-20261126T120000Z" {
		t.Fatalf("runs = %+v", runs)
	}
	pending, err := b.insp.ListPendingTasks(jobs.QueueCollect)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(telemetry.Default().Names()); len(pending) != want {
		t.Errorf("%d collect jobs, want %d", len(pending), want)
	}
	// The deadline (12:30) is in the past here, so asynq made the job pending.
	info, err := b.insp.GetTaskInfo(jobs.QueueControl, jobs.FinalizeID("", "sched-20261126T120000Z", jobs.ReasonDeadline))
	if err != nil || info.State != asynq.TaskStatePending {
		t.Errorf("deadline finalize: %+v %v", info, err)
	}
	q, _ := b.insp.GetQueueInfo(jobs.QueueControl)
	if q.Size != 1 {
		t.Errorf("control queue holds %d jobs, want 1", q.Size)
	}
}

func TestStartRunRejectsUnknownTaskAndEnqueuesNothing(t *testing.T) {
	b := setup(t)
	s := b.scheduler(t, time.Now())
	_, err := s.StartRun(context.Background(), "manual-x", "manual", run.KindPartial, []string{"cloud", "nosuch"})
	if err == nil {
		t.Fatal("unknown task accepted")
	}
	if _, err := b.st.Get(context.Background(), "manual-x"); !errors.Is(err, run.ErrNotFound) {
		t.Errorf("run created: %v", err)
	}
	if q, err := b.insp.GetQueueInfo(jobs.QueueCollect); err == nil && q.Size != 0 {
		t.Errorf("jobs enqueued: %d", q.Size)
	}
}

func TestStale(t *testing.T) {
	b := setup(t)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	s := b.scheduler(t, now)
	if stale, err := s.Stale(context.Background()); err != nil || !stale {
		t.Errorf("no snapshot: stale=%v err=%v", stale, err)
	}
	sealed(t, b.st, "r1", now.Add(-time.Hour))
	if stale, _ := s.Stale(context.Background()); stale {
		t.Error("1h-old snapshot with a 12h interval is stale")
	}
	s13 := b.scheduler(t, now.Add(12*time.Hour))
	if stale, _ := s13.Stale(context.Background()); !stale {
		t.Error("13h-old snapshot is not stale")
	}
}

// sealed creates a full run at created and seals it with its one task ok.
func sealed(t *testing.T, st *run.Store, id string, created time.Time) {
	t.Helper()
	ctx := context.Background()
	r := run.Run{ID: id, Kind: run.KindFull, CreatedAt: created, Deadline: created.Add(time.Minute), Tasks: []string{"cloud"}, Indices: config.DefaultIndices()}
	if _, err := st.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Record(ctx, id, run.TaskRecord{Task: "cloud", Status: run.TaskOK, Attempt: 1, Result: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Close(ctx, id, run.ReasonComplete, created); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.Seal(ctx, r, run.Seal{At: created, Snapshot: []byte(`{}`)}); !ok || err != nil {
		t.Fatal(ok, err)
	}
}

// The effective catch-up grace is at most a quarter of the interval.
func TestCatchupGraceClamp(t *testing.T) {
	tests := []struct {
		interval, grace, want time.Duration
	}{
		{12 * time.Hour, 10 * time.Minute, 10 * time.Minute},
		{2 * time.Minute, 10 * time.Minute, 30 * time.Second},
		{time.Hour, 15 * time.Minute, 15 * time.Minute},
		{time.Hour, 16 * time.Minute, 15 * time.Minute},
		{12 * time.Hour, 0, 0},
		{2 * time.Minute, 0, 0},
	}
	for _, tc := range tests {
		if got := scheduler.CatchupGrace(tc.interval, tc.grace); got != tc.want {
			t.Errorf("interval %s, grace %s: got %s, want %s", tc.interval, tc.grace, got, tc.want)
		}
	}
}

// A scheduler starting just before a slot boundary does not catch up: the
// next slot's run follows within APMTEL_CATCHUP_GRACE.
func TestNoCatchUpRightBeforeTheNextSlot(t *testing.T) {
	for _, tc := range []struct {
		name     string
		now      time.Time
		interval time.Duration // default 12h when zero
		catch    bool
	}{
		{"next slot in 5m", time.Date(2026, 11, 26, 11, 55, 0, 0, time.UTC), 0, false},
		{"next slot in 2h", time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC), 0, true},
		{"a full run in progress", time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC), 0, false},
		// The default 10m grace is clamped to 30s for a 2m interval: a
		// scheduler one minute before the next slot catches up, one 20s
		// before it does not.
		{"2m interval, next slot in 1m", time.Date(2026, 11, 26, 10, 1, 0, 0, time.UTC), 2 * time.Minute, true},
		{"2m interval, next slot in 20s", time.Date(2026, 11, 26, 10, 1, 40, 0, time.UTC), 2 * time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := setup(t)
			if tc.interval != 0 {
				b.cfg.Interval = tc.interval
			}
			s := b.scheduler(t, tc.now)
			// The scheduler decides on the catch-up run before it first
			// waits for a slot, and logs that wait.
			logs := &testenv.Buffer{}
			s.Logger = zerolog.New(logs).Level(zerolog.DebugLevel)
			if tc.name == "a full run in progress" {
				if _, err := s.StartRun(context.Background(), "manual-1", "manual", run.KindFull, nil); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			testenv.Eventually(t, 10*time.Second, "the scheduler to wait for the next slot", func() bool {
				return strings.Contains(logs.String(), "waiting for the next slot")
			})
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			runs, _ := b.st.List(context.Background(), 10)
			scheduled := 0
			for _, r := range runs {
				if r.Trigger == "scheduled" {
					scheduled++
				}
			}
			if got := scheduled == 1; got != tc.catch {
				t.Errorf("catch-up run started: %v, want %v (runs %+v)", got, tc.catch, runs)
			}
		})
	}
}

func TestCancelRemovesEveryJobOfTheRun(t *testing.T) {
	b := setup(t)
	s := b.scheduler(t, time.Now())
	ctx := context.Background()
	if _, err := s.StartRun(ctx, "manual-c", "manual", run.KindFull, nil); err != nil {
		t.Fatal(err)
	}
	c, err := scheduler.Cancel(ctx, b.st, b.insp, "manual-c")
	if err != nil {
		t.Fatal(err)
	}
	if want := len(telemetry.Default().Names()); c.Removed != want || c.Stopped != 0 {
		t.Errorf("cancel %+v, want %d collect jobs removed (and the deadline finalize, not counted)", c, want)
	}
	for _, q := range []string{jobs.QueueCollect, jobs.QueueControl} {
		if info, err := b.insp.GetQueueInfo(q); err == nil && info.Size != 0 {
			t.Errorf("queue %s still holds %d jobs", q, info.Size)
		}
	}
	r, _ := b.st.Get(ctx, "manual-c")
	if r.Status != run.StatusCancelled || r.Upload.String() != "skipped (cancelled)" {
		t.Errorf("run %+v", r)
	}
	var se *run.StateError
	if _, err := scheduler.Cancel(ctx, b.st, b.insp, "manual-c"); !errors.As(err, &se) {
		t.Errorf("second cancel: %v", err)
	}
}
