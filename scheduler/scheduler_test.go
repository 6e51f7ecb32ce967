package scheduler_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/store"
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
	st   *store.Store
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
	return &bundle{st: store.New(rdb, keys.New(""), time.Hour, 50), insp: insp, opt: opt, cfg: cfg}
}

func (b *bundle) scheduler(t *testing.T, now time.Time) *scheduler.Scheduler {
	cl := asynq.NewClient(b.opt)
	t.Cleanup(func() { cl.Close() })
	return &scheduler.Scheduler{Config: b.cfg, Store: b.st, Registry: telemetry.Default(), Enqueuer: cl,
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
	runs, _ := b.st.ListRuns(context.Background(), 10)
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
	info, err := b.insp.GetTaskInfo(jobs.QueueControl, "finalize:sched-20261126T120000Z:deadline")
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
	_, err := s.StartRun(context.Background(), "manual-x", "manual", []string{"cloud", "nosuch"})
	if err == nil {
		t.Fatal("unknown task accepted")
	}
	if _, err := b.st.GetRun(context.Background(), "manual-x"); !errors.Is(err, store.ErrNotFound) {
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
	r := store.Run{ID: "r1", CreatedAt: now.Add(-time.Hour), Tasks: []string{"cloud"}, Indices: config.DefaultIndices()}
	_, _ = b.st.CreateRun(context.Background(), r)
	_ = b.st.PutSnapshot(context.Background(), r, []byte(`{}`))
	if stale, _ := s.Stale(context.Background()); stale {
		t.Error("1h-old snapshot with a 12h interval is stale")
	}
	s13 := b.scheduler(t, now.Add(12*time.Hour))
	if stale, _ := s13.Stale(context.Background()); !stale {
		t.Error("13h-old snapshot is not stale")
	}
}
