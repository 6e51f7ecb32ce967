package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

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
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

func (s *Scheduler) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

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

// Run schedules until ctx ends: at start when the newest snapshot is stale,
// then at the start of every slot. Redis errors are logged and retried; they
// never stop the loop.
func (s *Scheduler) Run(ctx context.Context) error {
	l := s.log()
	grace := CatchupGrace(s.Config.Interval, s.Config.CatchupGrace)
	ev := l.Info()
	if grace != s.Config.CatchupGrace {
		ev = ev.Str("catchup_grace_configured", s.Config.CatchupGrace.String())
	}
	ev.Str("interval", s.Config.Interval.String()).Str("catchup_grace", grace.String()).Msg("scheduler started")
	stale, err := s.Stale(ctx)
	if err != nil {
		l.Warn().Err(err).Msg("cannot read the latest snapshot; assuming stale")
		stale = true
	}
	next := SlotStart(s.now(), s.Config.Interval).Add(s.Config.Interval)
	switch {
	case stale && next.Sub(s.now()) <= grace:
		l.Info().Time("next_slot", next).Str("grace", grace.String()).
			Msg("newest snapshot is stale, but the next slot starts within APMTEL_CATCHUP_GRACE; no catch-up run")
	case stale:
		// Runs never overlap: a full run already in flight (a manual one,
		// or another replica's catch-up) is this catch-up.
		if r, open, err := s.Runs.OpenFull(ctx); err == nil && open {
			l.Info().Str("run_id", r.ID).Msg("newest snapshot is stale, but a full run is in progress; no catch-up run")
			break
		}
		s.tickLogged(ctx)
	}
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
		case <-t.C:
		}
		s.tickLogged(ctx)
	}
}

// tickLogged ticks, retrying with backoff while Redis is unreachable, until
// the slot is over (the next slot's tick takes over) or ctx ends.
func (s *Scheduler) tickLogged(ctx context.Context) {
	l := s.log()
	slot := SlotStart(s.now(), s.Config.Interval)
	backoff := time.Second
	for attempt := 1; ; attempt++ {
		id, created, err := s.Tick(ctx)
		if err == nil {
			if !created {
				l.Debug().Str("run_id", id).Msg("slot's run already exists")
			}
			return
		}
		l.Warn().Err(err).Int("attempt", attempt).Str("retry_in", backoff.String()).Msg("cannot start the scheduled run; retrying")
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if !SlotStart(s.now(), s.Config.Interval).Equal(slot) {
			l.Error().Err(err).Time("slot", slot).Msg("slot ended before its run could be started")
			return
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}
