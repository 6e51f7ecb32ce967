package workers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/backoff"
	"github.com/apmtel/apmtel/internal/clock"
	"github.com/apmtel/apmtel/internal/collect"
	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/fleet"
	"github.com/apmtel/apmtel/internal/limiter"
	"github.com/apmtel/apmtel/internal/logs"
	"github.com/apmtel/apmtel/internal/run"
)

// ErrNotConfigured is why a job of a cluster that is not in the clusters
// file (any more) or is disabled is not run: it ends quietly, recorded,
// without a retry. The Cluster returned with it still has the cluster's
// run store, so the job's run can be recorded, finalized and uploaded.
var ErrNotConfigured = errors.New("cluster not configured")

// ErrStopping refuses a job reaching a worker whose clients are closed: it
// goes back to the queue (retried elsewhere), never archived.
var ErrStopping = errors.New("worker stopping")

// FleetClusters is the Clusters of a worker collecting from the clusters
// of a clusters file: one client per cluster (its transport with its CA,
// its credentials read from their files on every request, its URLs) behind
// its own cap (limiter.Semaphore of Cluster.Cap, with the fleet-wide cap
// when one is set), built on a cluster's first job, rebuilt when its
// Revision changes and closed when it leaves the file or is disabled.
//
// A run in flight keeps what it was created with: its tasks and index
// patterns are stored in the run by the scheduler. Its connection is the
// cluster's current one: a job after a reload uses the new client (a
// rotated key or a moved URL is what the reload is for, and the old client
// may no longer be able to connect), and a job of a cluster removed while
// its run was open ends with ErrNotConfigured, recorded as the task's
// failure, so the run finalizes with what it has instead of waiting for
// its deadline.
type FleetClusters struct {
	cfg      config.Config
	rdb      redis.UniversalClient
	src      fleet.Source
	fleetCap *limiter.Fleet
	now      clock.Clock
	log      zerolog.Logger

	mu      sync.Mutex
	members map[string]*member
	stores  map[string]*run.Store
	closed  bool
}

// member is the client of one cluster at one revision.
type member struct {
	rev string
	c   Cluster
	sem *limiter.Semaphore
	tr  *http.Transport
}

// close ends the member's cap subscription and its idle connections. A job
// still using it finishes: its requests in flight keep their connections,
// and a Semaphore without its subscription polls.
func (m *member) close() {
	if m.sem != nil {
		_ = m.sem.Close()
	}
	m.tr.CloseIdleConnections()
}

// NewFleetClusters returns the Clusters of src; fleetCap (nil: none) is
// the fleet-wide cap every cluster's requests count against too.
func NewFleetClusters(cfg config.Config, rdb redis.UniversalClient, src fleet.Source, fleetCap *limiter.Fleet, now clock.Clock, log zerolog.Logger) *FleetClusters {
	return &FleetClusters{cfg: cfg, rdb: rdb, src: src, fleetCap: fleetCap, now: now, log: logs.Named(log, logs.Worker),
		members: map[string]*member{}, stores: map[string]*run.Store{}}
}

// Cluster returns the Cluster of the named source cluster as the current
// Set describes it, building its client when it has none at this revision.
func (f *FleetClusters) Cluster(source string) (Cluster, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.store(source)
	c, ok := f.src.Current().Get(source)
	switch {
	case f.closed:
		return Cluster{Runs: st}, fmt.Errorf("cluster %s: %w", source, ErrStopping)
	case !ok:
		f.drop(source)
		return Cluster{Runs: st}, fmt.Errorf("cluster %s: %w: not in the clusters file", source, ErrNotConfigured)
	case !c.Enabled:
		f.drop(source)
		return Cluster{Runs: st}, fmt.Errorf("cluster %s: %w: disabled: %s", source, ErrNotConfigured, c.DisabledReason)
	}
	if m := f.members[source]; m != nil && m.rev == c.Revision() {
		return m.c, nil
	}
	f.drop(source)
	m, err := f.build(c, st)
	if err != nil {
		return Cluster{Runs: st}, fmt.Errorf("cluster %s: %w", source, err)
	}
	f.members[source] = m
	return m.c, nil
}

// store is the run store of a cluster; it only names keys, so it is kept
// for a removed cluster too (its jobs still record, finalize and upload).
func (f *FleetClusters) store(name string) *run.Store {
	if st := f.stores[name]; st != nil {
		return st
	}
	st := run.NewStore(f.rdb, fleet.Cluster{Name: name}.Space(f.cfg.KeyPrefix), f.cfg.HistoryTTL, f.cfg.HistoryLimit)
	f.stores[name] = st
	return st
}

func (f *FleetClusters) build(c fleet.Cluster, st *run.Store) (*member, error) {
	tr, err := es.NewTransport(config.Cluster{CACert: c.CACert, Insecure: c.Insecure})
	if err != nil {
		return nil, err
	}
	m := &member{rev: c.Revision(), tr: tr}
	var gate es.Gate
	if cp := c.Cap(f.cfg.SearchConcurrency); cp > 0 || f.fleetCap != nil {
		if cp <= 0 {
			cp = maxClusterCap // no cap of its own: the fleet's alone binds
		}
		m.sem = limiter.New(f.rdb, st.Keys(), cp, limiter.Options{Fleet: f.fleetCap})
		gate = m.sem.Gate
	}
	if c.Insecure {
		f.log.Warn().Str("cluster", c.Name).Msg("TLS certificate verification is OFF for this cluster (insecure: true)")
	}
	client, err := es.NewClient(es.ClientParams{Cluster: config.Cluster{URLs: c.URLs, CACert: c.CACert, Insecure: c.Insecure},
		Transport: credentialed{tr, c}, Gate: collect.MeteredGate(gate)})
	if err != nil {
		m.close()
		return nil, err
	}
	x := NewExecutor(f.cfg, client)
	x.Now = f.now
	m.c = Cluster{Runs: st, Executor: x, KibanaVersion: c.Version(f.cfg.KibanaVersion)}
	f.log.Info().Str("cluster", c.Name).Str("revision", c.Revision()).Int("cap", c.Cap(f.cfg.SearchConcurrency)).Msg("cluster client built")
	return m, nil
}

// maxClusterCap stands for "no cap of its own" when the fleet-wide cap is
// set (the Semaphore carries both).
const maxClusterCap = 1 << 20

// drop closes the named cluster's client, if any. f.mu is held.
func (f *FleetClusters) drop(name string) {
	if m := f.members[name]; m != nil {
		m.close()
		delete(f.members, name)
		f.log.Info().Str("cluster", name).Msg("cluster client closed")
	}
}

// Run follows the Source until ctx ends: the client of a cluster that left
// the file, was disabled or changed is closed at once (a changed one is
// rebuilt on its next job), so no connection outlives its configuration.
func (f *FleetClusters) Run(ctx context.Context) {
	sets, stop := f.src.Subscribe()
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-sets:
			f.apply(s)
		}
	}
}

func (f *FleetClusters) apply(s fleet.Set) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, m := range f.members {
		if c, ok := s.Get(name); !ok || !c.Enabled || c.Revision() != m.rev {
			f.drop(name)
		}
	}
}

// Backoff returns the backoff state store of the named cluster (the
// policy of APMTEL_FLEET_BACKOFF_AFTER over the interval).
func (f *FleetClusters) Backoff(name string) *backoff.Store {
	return NewBackoffStore(f.cfg, f.rdb, name)
}

// NewBackoffStore is the backoff store of the named cluster under cfg: the
// one construction for the workers that write it and the scheduler that
// reads it.
func NewBackoffStore(cfg config.Config, rdb redis.UniversalClient, name string) *backoff.Store {
	p := backoff.DefaultPolicy(cfg.Interval)
	p.After = cfg.FleetBackoffAfter
	return backoff.NewStore(rdb, fleet.Cluster{Name: name}.Space(cfg.KeyPrefix), p, cfg.HistoryTTL)
}

// Open is the number of clients held (tests: none is left behind).
func (f *FleetClusters) Open() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.members)
}

// Close closes every client; later jobs are refused (the worker stops).
func (f *FleetClusters) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for name := range f.members {
		f.drop(name)
	}
}

// credentialed sets a cluster's credentials on every request, read from
// its secret files then (fleet.SecretFile re-reads a changed file), so a
// rotated key is used without a reload.
type credentialed struct {
	next http.RoundTripper
	c    fleet.Cluster
}

func (t credentialed) RoundTrip(r *http.Request) (*http.Response, error) {
	cr, err := t.c.Credentials()
	if err != nil {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, err
	}
	if cr.APIKey == "" && cr.Username == "" {
		return t.next.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	if cr.APIKey != "" {
		r.Header.Set("Authorization", "ApiKey "+cr.APIKey)
	} else {
		r.SetBasicAuth(cr.Username, cr.Password)
	}
	return t.next.RoundTrip(r)
}
