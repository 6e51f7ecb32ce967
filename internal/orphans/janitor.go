package orphans

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/clock"
)

// Defaults of the janitor.
const (
	// DefaultMinAge is how long an entry must have been seen without a
	// usable task hash and without a lease before it is removed: well past
	// asynq's 30 s lease and its one-minute recoverer, so anything asynq
	// itself could still act on has been given every chance.
	DefaultMinAge = 5 * time.Minute
	// DefaultEvery is the time between sweeps; one scan script per queue.
	DefaultEvery = time.Minute
)

// Janitor removes orphaned active entries that have had no usable task hash
// and no lease for MinAge. Every worker runs one: the removal re-checks the
// entry in one script, so janitors of many workers never remove a live
// task, and removing an entry twice is harmless. The age is measured from
// when this janitor first saw the entry, so a restarted worker waits the
// whole MinAge again (the safe direction).
type Janitor struct {
	RDB    redis.UniversalClient
	Queues []string
	// MinAge (DefaultMinAge when zero) and Every (DefaultEvery when zero).
	MinAge, Every time.Duration
	Logger        zerolog.Logger
	// Now is the clock (the wall clock when nil).
	Now clock.Clock

	seen map[seenKey]time.Time
}

type seenKey struct{ queue, id, msgSum string }

func (j *Janitor) now() time.Time { return j.Now.Now() }

// Sweep scans every queue once and removes the orphans old enough. It
// returns the entries it removed; a queue that cannot be read is logged and
// skipped.
func (j *Janitor) Sweep(ctx context.Context) []Entry {
	if j.seen == nil {
		j.seen = map[seenKey]time.Time{}
	}
	minAge := j.MinAge
	if minAge <= 0 {
		minAge = DefaultMinAge
	}
	now := j.now()
	still := map[seenKey]bool{}
	var removed []Entry
	for _, q := range j.Queues {
		found, _, err := Scan(ctx, j.RDB, q)
		if err != nil {
			j.Logger.Warn().Err(err).Str("queue", q).Msg("cannot scan the active list for orphaned entries")
			// Keep what was seen in this queue: an outage must not restart the clock.
			for k := range j.seen {
				if k.queue == q {
					still[k] = true
				}
			}
			continue
		}
		for _, e := range found {
			if e.Leased(now) {
				continue
			}
			k := seenKey{e.Queue, e.ID, e.msgSum}
			still[k] = true
			first, ok := j.seen[k]
			if !ok {
				j.seen[k] = now
				j.Logger.Warn().Str("queue", e.Queue).Str("job_id", e.ID).Str("reason", string(e.Reason)).
					Str("removed_after", minAge.String()).Msg("orphaned entry in asynq's active list: no asynq process will move it; removed unless it gets a lease")
				continue
			}
			if now.Sub(first) < minAge {
				continue
			}
			gone, err := Remove(ctx, j.RDB, e, now)
			if err != nil {
				j.Logger.Warn().Err(err).Str("queue", e.Queue).Str("job_id", e.ID).Msg("cannot remove orphaned active entry; retried at the next sweep")
				continue
			}
			delete(still, k)
			if !gone {
				j.Logger.Info().Str("queue", e.Queue).Str("job_id", e.ID).Msg("orphaned active entry came alive or is gone; kept")
				continue
			}
			ev := j.Logger.Warn().Str("queue", e.Queue).Str("job_id", e.ID).Str("reason", string(e.Reason)).
				Str("age", now.Sub(first).Round(time.Second).String())
			if e.Reason == Undecodable {
				ev = ev.Str("kept_task_hash", keysTask(e))
			}
			ev.Msg("orphaned active entry removed from asynq's active list")
			removed = append(removed, e)
		}
	}
	for k := range j.seen {
		if !still[k] {
			delete(j.seen, k)
		}
	}
	return removed
}

// Run sweeps every Every until ctx ends.
func (j *Janitor) Run(ctx context.Context) {
	every := j.Every
	if every <= 0 {
		every = DefaultEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		j.Sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
