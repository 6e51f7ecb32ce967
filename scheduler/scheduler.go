package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/clock"
	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/logs"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/jobs"
)

// Scheduler creates runs and enqueues their jobs.
type Scheduler struct {
	Config   config.Config
	Runs     *run.Store
	Registry *telemetry.Registry
	Enqueuer jobs.Enqueuer
	Logger   zerolog.Logger
	// Now is the clock (the wall clock when nil).
	Now clock.Clock
}

func (s *Scheduler) now() time.Time { return s.Now.Now() }

func (s *Scheduler) log() zerolog.Logger { return logs.Named(s.Logger, logs.Scheduler) }

// SlotStart is the start of the schedule slot holding t: slots are aligned
// to the Unix epoch, so every replica computes the same one.
func SlotStart(t time.Time, interval time.Duration) time.Time {
	return time.UnixMilli(t.UnixMilli() - t.UnixMilli()%interval.Milliseconds()).UTC()
}

// ScheduledRunID is the id of the scheduled run of the slot starting at slot.
func ScheduledRunID(slot time.Time) string { return "sched-" + slot.UTC().Format("20060102T150405Z") }

// ManualRunID returns a fresh id for a manual run.
func ManualRunID(t time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "manual-" + t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// StartRun creates run id of kind over the given tasks (all when empty) and
// enqueues its jobs. It is idempotent: for an existing open run it
// re-enqueues the jobs (duplicates are refused by job id), and for a closed
// one it does nothing. It reports whether the run was new.
func (s *Scheduler) StartRun(ctx context.Context, id, trigger string, kind run.Kind, taskNames []string) (bool, error) {
	tasks, err := s.Registry.Select(taskNames)
	if err != nil {
		return false, err
	}
	names := make([]string, len(tasks))
	for i, t := range tasks {
		names[i] = t.Name
	}
	now := s.now()
	r := run.Run{ID: id, Trigger: trigger, Kind: kind, CreatedAt: now, Deadline: now.Add(s.Config.RunDeadline), Tasks: names, Indices: s.Config.Indices}
	created, err := s.Runs.Create(ctx, r)
	if err != nil {
		return false, err
	}
	if !created {
		existing, err := s.Runs.Get(ctx, id)
		if err != nil {
			return false, err
		}
		if existing.Status != run.StatusOpen {
			return false, nil
		}
		r = existing
	}
	source := s.Runs.Keys().Source
	timing := s.Config.Timing()
	// The deadline finalize goes first: if enqueueing stops half-way, the run
	// still finalizes with what it has.
	fin, err := jobs.NewFinalize(jobs.RunPayload{Source: source, RunID: id, Reason: jobs.ReasonDeadline}, r.Deadline, timing)
	if err := jobs.Enqueue(ctx, s.Enqueuer, fin, err); err != nil {
		return created, fmt.Errorf("run %s: enqueue deadline finalize: %w", id, err)
	}
	for _, name := range r.Tasks {
		t, err := jobs.NewCollect(jobs.CollectPayload{Source: source, RunID: id, Task: name}, timing)
		if err := jobs.Enqueue(ctx, s.Enqueuer, t, err); err != nil {
			return created, fmt.Errorf("run %s: enqueue %s: %w", id, name, err)
		}
	}
	if created {
		l := s.log()
		l.Info().Str("run_id", id).Str("trigger", trigger).Str("kind", string(kind)).Int("tasks", len(r.Tasks)).
			Time("deadline", r.Deadline).Msg("run started")
	}
	return created, nil
}

// Tick starts the run of the current slot. It is safe to call from any
// number of replicas at any time.
func (s *Scheduler) Tick(ctx context.Context) (string, bool, error) {
	id := ScheduledRunID(SlotStart(s.now(), s.Config.Interval))
	created, err := s.StartRun(ctx, id, "scheduled", run.KindFull, nil)
	return id, created, err
}

// CatchupGrace is the catch-up grace a scheduler uses: the configured one
// (APMTEL_CATCHUP_GRACE), at most a quarter of the interval. The grace only
// avoids two runs in quick succession (a catch-up, then the next slot's run
// minutes later); with a grace as long as the interval every start falls
// within it and a stale scheduler would never catch up. A quarter still
// skips the catch-up when the next run is close, while a scheduler started
// in the first three quarters of any slot catches up.
func CatchupGrace(interval, grace time.Duration) time.Duration {
	if grace <= 0 {
		return 0
	}
	return min(grace, interval/4)
}

// Stale reports whether the newest snapshot is missing or older than the interval.
func (s *Scheduler) Stale(ctx context.Context) (bool, error) {
	_, at, err := s.Runs.Latest(ctx)
	if errors.Is(err, run.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return s.now().Sub(at) > s.Config.Interval, nil
}

// StartFull starts full run id unless a full run is already in progress (a
// manual one, a replica's catch-up, the slot's own run): runs never
// overlap. It returns the run in progress — the one it started, or the one
// it found — and whether it started it. A Redis error reading the open runs
// is returned, never taken for "none open": that would start an
// overlapping run.
func (s *Scheduler) StartFull(ctx context.Context, id, trigger string) (run.Run, bool, error) {
	r, open, err := s.Runs.OpenFull(ctx)
	if err != nil {
		return run.Run{}, false, fmt.Errorf("runs in progress: %w", err)
	}
	if open {
		return r, false, nil
	}
	created, err := s.StartRun(ctx, id, trigger, run.KindFull, nil)
	if err != nil {
		return run.Run{}, false, err
	}
	r, err = s.Runs.Get(ctx, id)
	return r, created, err
}

// catchUp starts the current slot's run when the newest snapshot is stale
// and no full run is in progress, unless the next slot starts within the
// catch-up grace. It is checked at start and every grace period after, so
// a run lost with Redis's data (a restart without persistence) is started
// again within one grace, not at the next slot.
func (s *Scheduler) catchUp(ctx context.Context, grace time.Duration) error {
	stale, err := s.Stale(ctx)
	if err != nil {
		return fmt.Errorf("latest snapshot: %w", err)
	}
	if !stale {
		return nil
	}
	l := s.log()
	now := s.now()
	slot := SlotStart(now, s.Config.Interval)
	if next := slot.Add(s.Config.Interval); next.Sub(now) <= grace {
		l.Debug().Time("next_slot", next).Str("grace", grace.String()).
			Msg("newest snapshot is stale, but the next slot starts within APMTEL_CATCHUP_GRACE; no catch-up run")
		return nil
	}
	r, started, err := s.StartFull(ctx, ScheduledRunID(slot), "scheduled")
	if err != nil {
		return err
	}
	if !started && r.ID != "" {
		l.Debug().Str("run_id", r.ID).Msg("newest snapshot is stale, but a full run is in progress; no catch-up run")
	}
	return nil
}

// catchupEvery is how often a running scheduler checks for staleness: the
// catch-up grace, or a quarter of the interval when catching up is never
// held back.
func catchupEvery(interval, grace time.Duration) time.Duration {
	if grace > 0 {
		return grace
	}
	return max(interval/4, time.Second)
}

// Run schedules until ctx ends: the current slot's run when the newest
// snapshot is stale (at start, and every catch-up grace after), and a run
// at the start of every slot. Redis errors are logged and retried; they
// never stop the loop.
func (s *Scheduler) Run(ctx context.Context) error {
	l := s.log()
	grace := CatchupGrace(s.Config.Interval, s.Config.CatchupGrace)
	ev := l.Info()
	if grace != s.Config.CatchupGrace {
		ev = ev.Str("catchup_grace_configured", s.Config.CatchupGrace.String())
	}
	ev.Str("interval", s.Config.Interval.String()).Str("catchup_grace", grace.String()).Msg("scheduler started")
	s.retrying(ctx, "catch-up run", func() error { return s.catchUp(ctx, grace) })
	check := time.NewTicker(catchupEvery(s.Config.Interval, grace))
	defer check.Stop()
	for {
		next := SlotStart(s.now(), s.Config.Interval).Add(s.Config.Interval)
		wait := next.Sub(s.now())
		l.Debug().Time("next", next).Msg("waiting for the next slot")
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			l.Info().Msg("scheduler stopped")
			return nil
		case <-check.C:
			t.Stop()
			s.retrying(ctx, "catch-up run", func() error { return s.catchUp(ctx, grace) })
		case <-t.C:
			s.tickLogged(ctx)
		}
	}
}

// tickLogged starts the slot's run (Tick).
func (s *Scheduler) tickLogged(ctx context.Context) {
	s.retrying(ctx, "scheduled run", func() error {
		id, created, err := s.Tick(ctx)
		if err == nil && !created {
			l := s.log()
			l.Debug().Str("run_id", id).Msg("slot's run already exists")
		}
		return err
	})
}

// retrying runs f, retrying with backoff while it fails (Redis unreachable),
// until the slot is over (the next slot's tick takes over) or ctx ends.
func (s *Scheduler) retrying(ctx context.Context, what string, f func() error) {
	l := s.log()
	slot := SlotStart(s.now(), s.Config.Interval)
	backoff := time.Second
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil {
			return
		}
		l.Warn().Err(err).Int("attempt", attempt).Str("retry_in", backoff.String()).Msg("cannot start the " + what + "; retrying")
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if !SlotStart(s.now(), s.Config.Interval).Equal(slot) {
			l.Error().Err(err).Time("slot", slot).Msg("slot ended before its " + what + " could be started")
			return
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}
