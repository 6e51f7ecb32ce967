package workers

import (
	"context"
	"fmt"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/backoff"
	"github.com/apmtel/apmtel/internal/clock"
	"github.com/apmtel/apmtel/internal/collect"
	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/fleet"
	"github.com/apmtel/apmtel/internal/health"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/limiter"
	"github.com/apmtel/apmtel/internal/logs"
	"github.com/apmtel/apmtel/internal/orphans"
	"github.com/apmtel/apmtel/internal/redisconn"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/internal/uploader"
	"github.com/apmtel/apmtel/jobs"
)

// Cluster is what a worker holds for one source cluster: the store of its
// runs and the executor of its tasks (its client, behind its cap).
type Cluster struct {
	Runs     *run.Store
	Executor *collect.Executor
	// KibanaVersion is the version the document reports when the source's
	// saved objects do not tell it (the cluster's, else APMTEL_KIBANA_VERSION).
	KibanaVersion string
}

// Clusters gives the Cluster of a job's source cluster by its name (the
// name a job carries; keys.DefaultSource for an empty one). A worker that
// collects from several clusters holds one Cluster per name.
type Clusters interface {
	Cluster(source string) (Cluster, error)
}

// OneCluster is the Clusters of a worker with a single source cluster: a job
// of another one is refused, never run against the wrong cluster.
type OneCluster Cluster

// Cluster returns c for its own source name.
func (c OneCluster) Cluster(source string) (Cluster, error) {
	if own := c.Runs.Keys().Source; source != own {
		return Cluster{}, fmt.Errorf("job of source cluster %q, but this worker collects from %q (APMTEL_SOURCE_NAME)", source, own)
	}
	return Cluster(c), nil
}

// NewExecutor is the one executor configuration, shared by workers and
// preview.
func NewExecutor(cfg config.Config, source es.Doer) *collect.Executor {
	return &collect.Executor{Source: source, SearchTimeout: cfg.SearchTimeout, TaskTimeout: cfg.TaskTimeout}
}

// Options are what a worker process is assembled from: the process's
// connections, its sink, and how to make the source cluster's client.
type Options struct {
	Config config.Config
	// RDB is the process's Redis client, shared by asynq, the run store,
	// the limiter and the janitor.
	RDB      redis.UniversalClient
	Runs     *run.Store
	Registry *telemetry.Registry
	Enqueuer jobs.Enqueuer
	Jobs     JobRemover
	Sink     uploader.Sink
	Logger   zerolog.Logger
	// NewSource returns the source cluster's client with gate (nil: none)
	// taken around every attempt of every request.
	NewSource func(gate es.Gate) (es.Doer, error)
	// Now is the process's clock (the wall clock when nil).
	Now clock.Clock
	// Fleet is the process's clusters (fleet.FromConfig). With a clusters
	// file the handlers reach each job's cluster through FleetClusters and
	// NewSource is not used; nil or the single APMTEL_SOURCE_* cluster keeps
	// the single-cluster assembly, unchanged.
	Fleet fleet.Source
}

// Process is one worker process: its asynq server, the orphan janitor,
// the cluster-wide search cap (limiter) and its readiness. NewProcess
// assembles it, Run starts it and stops every part when its context ends.
type Process struct {
	o        Options
	limiter  *limiter.Semaphore
	fleetCap *limiter.Fleet
	clusters *FleetClusters
	srv      *asynq.Server
	handler  asynq.Handler
	running  health.Flag
}

// NewProcess assembles a worker process. The source client's gate is the
// cluster-wide semaphore in Redis (APMTEL_SEARCH_CONCURRENCY, 0 = none),
// so every attempt of every request, retries included, holds a slot and a
// backoff holds none.
func NewProcess(o Options) (*Process, error) {
	p := &Process{o: o}
	cfg := o.Config
	if o.Fleet != nil && o.Fleet.Current().Origin() == fleet.OriginFile {
		if cfg.FleetConcurrency > 0 {
			p.fleetCap = limiter.NewFleet(o.RDB, keys.NewFleet(cfg.KeyPrefix), cfg.FleetConcurrency)
		}
		p.clusters = NewFleetClusters(cfg, o.RDB, o.Fleet, p.fleetCap, o.Now, o.Logger)
		p.assemble(p.clusters, p.clusters.Backoff)
		return p, nil
	}
	var gate es.Gate
	if cfg.SearchConcurrency > 0 {
		p.limiter = limiter.New(o.RDB, o.Runs.Keys(), cfg.SearchConcurrency, limiter.Options{})
		gate = p.limiter.Gate
	}
	source, err := o.NewSource(gate)
	if err != nil {
		p.close()
		return nil, err
	}
	x := NewExecutor(cfg, source)
	x.Now = o.Now
	p.assemble(OneCluster{Runs: o.Runs, Executor: x, KibanaVersion: cfg.KibanaVersion}, nil)
	return p, nil
}

// assemble makes the handlers over cs and the server.
func (p *Process) assemble(cs Clusters, bo func(string) *backoff.Store) {
	o := p.o
	h := NewHandlers(Deps{Config: o.Config, Clusters: cs, Registry: o.Registry,
		Sink: o.Sink, Enqueuer: o.Enqueuer, Jobs: o.Jobs, Logger: o.Logger, Now: o.Now, Backoff: bo})
	p.handler = NewMux(h)
	p.srv = NewServer(o.Config, o.RDB, o.Logger)
}

// Ready is the process's readiness check: ready while its server runs.
func (p *Process) Ready() health.Check { return p.running.Check("server", "worker server not running") }

// Run starts the server and the janitor, and when ctx ends shuts them down
// gracefully (in-flight jobs get Timing().ShutdownTimeout, then return to
// the queue) and closes the limiter.
func (p *Process) Run(ctx context.Context) error {
	defer p.close()
	cfg, l := p.o.Config, p.o.Logger
	if err := p.srv.Start(p.handler); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	p.running.Set(true)
	// Every worker sweeps asynq's active lists for entries no asynq process
	// will move (internal/orphans); its removal re-checks each entry in one
	// script, so many janitors are safe.
	jctx, stopJanitor := context.WithCancel(ctx)
	janitorDone := make(chan struct{})
	go func() {
		defer close(janitorDone)
		j := &orphans.Janitor{RDB: p.o.RDB, Queues: []string{jobs.QueueCollect, jobs.QueueControl}, MinAge: cfg.OrphanMinAge,
			Every: min(orphans.DefaultEvery, cfg.OrphanMinAge/2), Logger: logs.Named(l, logs.Janitor)}
		j.Run(jctx)
	}()
	defer func() { stopJanitor(); <-janitorDone }()
	if p.clusters != nil {
		// The clusters file is re-read on change and on SIGHUP; a cluster's
		// client follows its entry (FleetClusters.Run).
		fleetDone := make(chan struct{}, 2)
		go func() { fleet.Watch(jctx, p.o.Fleet, 0); fleetDone <- struct{}{} }()
		go func() { p.clusters.Run(jctx); fleetDone <- struct{}{} }()
		defer func() { stopJanitor(); <-fleetDone; <-fleetDone }()
	}
	wl := logs.Named(l, logs.Worker)
	wl.Info().Int("concurrency", cfg.Concurrency).Str("redis", cfg.RedisAddr).Str("redis_kind", redisconn.Kind(cfg)).Msg("worker started")
	<-ctx.Done()
	p.running.Set(false)
	wl.Info().Str("grace", cfg.Timing().ShutdownTimeout.String()).Msg("worker stopping; in-flight jobs get the shutdown grace, then return to the queue")
	p.srv.Shutdown()
	wl.Info().Msg("worker stopped")
	return nil
}

// close ends the limiter's wake-up subscription, and with a clusters file
// every cluster's client and the fleet-wide cap's subscription.
func (p *Process) close() {
	if p.limiter != nil {
		_ = p.limiter.Close()
	}
	if p.clusters != nil {
		p.clusters.Close()
	}
	if p.fleetCap != nil {
		_ = p.fleetCap.Close()
	}
}
