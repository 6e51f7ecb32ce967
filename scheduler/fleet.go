package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/backoff"
	"github.com/apmtel/apmtel/internal/clock"
	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/fleet"
	"github.com/apmtel/apmtel/internal/logs"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/spread"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/jobs"
)

// Fleet schedules the clusters of a clusters file: one full run per enabled
// cluster per slot, with the run id of a single-cluster deployment
// (ScheduledRunID) in the cluster's own key space. Each cluster starts at
// its offset in the slot (spread.Offset over APMTEL_FLEET_SPREAD), so the
// sources and the telemetry cluster are not all asked at the slot's first
// second.
//
// Catch-up is per cluster and needs no staleness check: a cluster is due
// once its offset in the current slot has passed, however long ago (a
// scheduler started late in the slot starts it at once), and a slot's run
// is created at most once (create-if-absent, as with any number of
// replicas), so slots missed while no scheduler ran are never run.
//
// A cluster backing off (internal/backoff: APMTEL_FLEET_BACKOFF_AFTER
// failed runs in a row) is skipped until its backoff ends; it then runs in
// the slot it ends in. A full run already open (a manual one) stands for
// the slot's run, as StartFull decides for a single cluster.
type Fleet struct {
	Config   config.Config
	RDB      redis.UniversalClient
	Clusters fleet.Source
	Registry *telemetry.Registry
	Enqueuer jobs.Enqueuer
	Logger   zerolog.Logger
	// Now is the clock (the wall clock when nil).
	Now clock.Clock
	// Backoff returns a cluster's backoff state (nil: never backed off).
	Backoff func(name string) *backoff.Store

	// started is the slot each cluster last had its run started in.
	started map[string]time.Time
}

// maxFleetWait bounds a sleep of the fleet loop, so a clock jump or a lost
// reload notice costs at most this.
const maxFleetWait = time.Minute

// Cluster is the Scheduler of one cluster of the fleet: its key space and
// its index patterns (the deployment's with the cluster's overrides, stored
// in each run at creation, so a reload never changes a run in flight).
func (f *Fleet) Cluster(c fleet.Cluster) *Scheduler {
	cfg := f.Config
	cfg.Indices = c.IndicesFrom(cfg.Indices)
	cfg.SourceName = c.Name
	return &Scheduler{Config: cfg, Runs: run.NewStore(f.RDB, c.Space(cfg.KeyPrefix), cfg.HistoryTTL, cfg.HistoryLimit),
		Registry: f.Registry, Enqueuer: f.Enqueuer, Logger: f.Logger.With().Str("cluster", c.Name).Logger(), Now: f.Now}
}

// Pass starts the current slot's run of every enabled cluster that is due
// and not backing off. It returns when the next cluster becomes due (or its
// backoff ends), and the errors of the clusters whose run could not be
// started (they are tried again at the next pass).
func (f *Fleet) Pass(ctx context.Context) (time.Time, error) {
	if f.started == nil {
		f.started = map[string]time.Time{}
	}
	l := logs.Named(f.Logger, logs.Scheduler)
	now := f.Now.Now()
	interval := f.Config.Interval
	spr := f.Config.Spread(interval)
	slot := spread.SlotStart(now, interval)
	next := slot.Add(interval)
	soon := func(t time.Time) {
		if t.Before(next) {
			next = t
		}
	}
	set := f.Clusters.Current()
	var errs []error
	for _, c := range set.Enabled() {
		off := spread.Offset(c.Name, interval, spr)
		last := f.started[c.Name]
		if !spread.Due(now, slot, off, last) {
			soon(spread.NextDue(now, interval, off, last))
			continue
		}
		if f.Backoff != nil {
			if bs := f.Backoff(c.Name); bs != nil {
				st, err := bs.Get(ctx)
				if err != nil {
					errs = append(errs, fmt.Errorf("cluster %s: backoff state: %w", c.Name, err))
					continue
				}
				if st.BackingOff(now) {
					l.Info().Str("cluster", c.Name).Time("until", st.Until).Msg("cluster backing off: " + st.Text(now))
					soon(st.Until)
					continue
				}
			}
		}
		r, created, err := f.Cluster(c).StartFull(ctx, ScheduledRunID(slot), "scheduled")
		if err != nil {
			errs = append(errs, fmt.Errorf("cluster %s: %w", c.Name, err))
			continue
		}
		f.started[c.Name] = slot
		if !created && r.ID != ScheduledRunID(slot) {
			l.Debug().Str("cluster", c.Name).Str("run_id", r.ID).Msg("a full run is in progress; it stands for the slot's run")
		}
		soon(slot.Add(interval).Add(off))
	}
	for name := range f.started {
		if _, ok := set.Get(name); !ok {
			delete(f.started, name)
		}
	}
	return next, errors.Join(errs...)
}

// Run schedules the fleet until ctx ends, following the clusters file: a
// cluster added starts at its offset (at once when its offset passed), a
// removed one is no longer started. Redis errors are logged and the
// clusters they concern tried again a few seconds later.
func (f *Fleet) Run(ctx context.Context) error {
	l := logs.Named(f.Logger, logs.Scheduler)
	set := f.Clusters.Current()
	l.Info().Str("interval", f.Config.Interval.String()).Str("spread", f.Config.Spread(f.Config.Interval).String()).
		Int("clusters", set.Len()).Int("enabled", len(set.Enabled())).Msg("fleet scheduler started")
	sets, stop := f.Clusters.Subscribe()
	defer stop()
	watchDone := make(chan struct{})
	wctx, cancel := context.WithCancel(ctx)
	go func() { defer close(watchDone); fleet.Watch(wctx, f.Clusters, 0) }()
	defer func() { cancel(); <-watchDone }()
	retry := time.Second
	for {
		next, err := f.Pass(ctx)
		wait := next.Sub(f.Now.Now())
		if err != nil {
			l.Warn().Err(err).Str("retry_in", retry.String()).Msg("cannot start some clusters' runs; retrying")
			wait = min(wait, retry)
			retry = min(2*retry, 30*time.Second)
		} else {
			retry = time.Second
		}
		wait = min(max(wait, 10*time.Millisecond), maxFleetWait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			l.Info().Msg("scheduler stopped")
			return nil
		case s := <-sets:
			t.Stop()
			l.Info().Str("version", s.Version()).Int("clusters", s.Len()).Int("enabled", len(s.Enabled())).Msg("clusters reloaded")
		case <-t.C:
		}
	}
}
