package scheduler_test

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/scheduler"
)

// A Redis restarted without its data loses the open run; the scheduler
// notices at its next staleness check (every catch-up grace) and starts the
// slot's run again, instead of waiting for the next slot. While Redis is
// down, "start a full run unless one is open" fails with the Redis error
// instead of starting an overlapping run.
func TestLostRunIsCollectedAgainWithinTheGrace(t *testing.T) {
	t.Parallel()
	addr := testenv.FreeAddr(t)
	stop := testenv.RedisServerAt(t, addr)
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 500 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	enq := asynq.NewClientFromRedisClient(rdb)
	cfg := config.Default()
	cfg.Interval, cfg.CatchupGrace = time.Hour, 2*time.Second
	st := run.NewStore(rdb, keys.New(""), time.Hour, 50)
	s := &scheduler.Scheduler{Config: cfg, Runs: st, Registry: telemetry.Default(), Enqueuer: enq, Logger: zerolog.Nop()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	slotRun := func() (run.Run, bool) {
		r, err := st.Get(context.Background(), scheduler.ScheduledRunID(scheduler.SlotStart(time.Now(), cfg.Interval)))
		return r, err == nil
	}
	testenv.Eventually(t, 10*time.Second, "the catch-up run", func() bool { _, ok := slotRun(); return ok })

	stop()
	if _, _, err := s.StartFull(context.Background(), "manual-down", "manual"); err == nil {
		t.Error("StartFull with Redis down: no error")
	}
	restarted := time.Now()
	testenv.RedisServerAt(t, addr)
	if _, ok := slotRun(); ok {
		t.Fatal("the restarted redis-server still holds the run: the test needs one without data")
	}
	testenv.Eventually(t, 3*cfg.CatchupGrace+2*time.Second, "the lost run started again", func() bool {
		r, ok := slotRun()
		return ok && r.Status == run.StatusOpen && len(r.Tasks) == len(telemetry.Default().Names())
	})
	took := time.Since(restarted)
	t.Logf("the lost run was started again %s after the restart (catch-up grace %s)", took.Round(time.Millisecond), cfg.CatchupGrace)
	if took > cfg.CatchupGrace+time.Second {
		t.Errorf("the lost run was started again after %s, more than one catch-up grace (%s)", took, cfg.CatchupGrace)
	}
	if _, err := st.Get(context.Background(), "manual-down"); err == nil {
		t.Error("StartFull with Redis down left a run")
	}
}
