package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynqmon"
	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/apmtel/apmtel/internal/backoff"
	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/console"
	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/fleet"
	"github.com/apmtel/apmtel/internal/fleetstatus"
	"github.com/apmtel/apmtel/internal/health"
	"github.com/apmtel/apmtel/internal/logs"
	"github.com/apmtel/apmtel/internal/redisconn"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/internal/webguard"
	"github.com/apmtel/apmtel/scheduler"
	"github.com/apmtel/apmtel/workers"
)

func runScheduler(e *env, args []string) error {
	cfg := e.cfg
	if err := httpAddrRule(cfg); err != nil {
		return err
	}
	rt, err := openRuntime(cfg, "scheduler")
	if err != nil {
		return err
	}
	defer rt.Close()
	ctx, stop := signalContext()
	defer stop()
	return serveScheduler(ctx, cfg, rt, newLogger(e, cfg))
}

func serveScheduler(ctx context.Context, cfg config.Config, rt *runtime, l zerolog.Logger) error {
	stopHTTP, err := startHTTP(cfg, l, logs.Scheduler, rt.rdb, health.Redis(rt.rdb))
	if err != nil {
		return err
	}
	defer stopHTTP()
	clusters, err := fleet.FromConfig(cfg, l)
	if err != nil {
		return err
	}
	if clusters.Current().Origin() == fleet.OriginFile {
		f := &scheduler.Fleet{Config: cfg, RDB: rt.rdb, Clusters: clusters, Registry: telemetry.Default(), Enqueuer: rt.client, Logger: l,
			Backoff: func(name string) *backoff.Store { return workers.NewBackoffStore(cfg, rt.rdb, name) }}
		return f.Run(ctx)
	}
	s := &scheduler.Scheduler{Config: cfg, Runs: newRuns(rt.rdb, cfg), Registry: telemetry.Default(), Enqueuer: rt.client, Logger: l}
	return s.Run(ctx)
}

func runWorker(e *env, args []string) error {
	cfg := e.cfg
	l := newLogger(e, cfg)
	if err := httpAddrRule(cfg); err != nil {
		return err
	}
	rt, err := openRuntime(cfg, "worker")
	if err != nil {
		return err
	}
	defer rt.Close()
	ctx, stop := signalContext()
	defer stop()
	return serveWorker(ctx, cfg, rt, l)
}

// serveWorker runs one worker process (workers.Process) until ctx ends.
func serveWorker(ctx context.Context, cfg config.Config, rt *runtime, l zerolog.Logger) error {
	sink, err := newSink(cfg, l)
	if err != nil {
		return err
	}
	clusters, err := fleet.FromConfig(cfg, l)
	if err != nil {
		return err
	}
	w, err := workers.NewProcess(workers.Options{Config: cfg, RDB: rt.rdb, Runs: newRuns(rt.rdb, cfg), Registry: telemetry.Default(),
		Enqueuer: rt.client, Jobs: rt.insp, Sink: sink, Logger: l, Fleet: clusters,
		NewSource: func(gate es.Gate) (es.Doer, error) { return newGatedSource(cfg, l, gate) }})
	if err != nil {
		return err
	}
	// Stopped after the worker, so a draining worker still answers /readyz
	// with 503 instead of refusing connections.
	stopHTTP, err := startHTTP(cfg, l, logs.Worker, rt.rdb, health.Redis(rt.rdb), w.Ready())
	if err != nil {
		return err
	}
	defer stopHTTP()
	return w.Run(ctx)
}

func runMonitor(e *env, args []string) error {
	cfg := e.cfg
	l := newLogger(e, cfg)
	// The monitor starts with Redis down: its /readyz says so.
	rt, err := newRuntime(cfg, "monitor")
	if err != nil {
		return err
	}
	defer rt.Close()
	ctx, stop := signalContext()
	defer stop()
	return serveMonitor(ctx, cfg, rt, l, nil)
}

// guard is the one protection of every HTTP endpoint apmtel serves (see
// internal/webguard): Host check on loopback, token, same-origin changes,
// read-only refusal.
func guard(cfg config.Config, addr string, l zerolog.Logger, h http.Handler) http.Handler {
	return webguard.Guard(webguard.Options{Addr: addr, Hosts: cfg.MonitorHosts, Token: cfg.MonitorToken, ReadOnly: cfg.MonitorReadOnly, Logger: l}, h)
}

// serveMonitor serves Asynqmon at /monitoring/ until ctx ends. ready, when
// not nil, receives the listening address.
func serveMonitor(ctx context.Context, cfg config.Config, rt *runtime, l zerolog.Logger, ready chan<- string) error {
	ml := logs.Named(l, logs.Monitor)
	if err := webguard.RequireToken("APMTEL_MONITOR_ADDR", cfg.MonitorAddr, cfg.MonitorToken); err != nil {
		return &config.UsageError{Err: err}
	}
	if !cfg.MonitorReadOnly {
		ml.Warn().Msg("monitor is writable (APMTEL_MONITOR_READ_ONLY=false): Asynqmon can pause queues and delete jobs; same-origin requests only")
	}
	// Asynqmon gets the process's client, not a pool of its own; it closes
	// it on Close, which is why it is not closed here but with the runtime.
	mon := asynqmon.New(asynqmon.Options{RootPath: "/monitoring", RedisConnOpt: redisconn.Shared{C: rt.rdb}, ReadOnly: cfg.MonitorReadOnly})
	mux := http.NewServeMux()
	mux.Handle("/monitoring/", mon)
	insp, rdb := rt.insp, rt.rdb
	// The cluster set of the fleet page and the per-cluster gauges: the
	// clusters file, kept current, or the one APMTEL_SOURCE_* cluster.
	src, err := fleet.FromConfig(cfg, ml)
	if err != nil {
		return err
	}
	go fleet.Watch(ctx, src, 0)
	clusters := fleetstatus.Reader{Redis: rdb, Prefix: cfg.KeyPrefix, Depth: cfg.HistoryLimit}
	mux.Handle("/metrics", monitorMetrics(insp, rdb, newRuns(rdb, cfg), cfg, src, clusters))
	if err := mountConsole(mux, cfg, l, rdb, src, clusters); err != nil {
		return err
	}
	// No catch-all: "/" is the console's runs page, and a mistyped path is
	// a 404 rather than a redirect to Asynqmon that hides the typo.
	ln, err := net.Listen("tcp", cfg.MonitorAddr)
	if err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	h := webguard.Headers(health.Public(health.New(ml, readyTimeout, health.Redis(rdb), health.Workers(insp)), guard(cfg, ln.Addr().String(), ml, mux)))
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ml.Info().Str("url", "http://"+ln.Addr().String()+"/monitoring/").Bool("read_only", cfg.MonitorReadOnly).
		Bool("auth", cfg.MonitorToken != "").Str("console", "http://"+ln.Addr().String()+console.RunsPath).Msg("Asynqmon and the console served")
	if ready != nil {
		ready <- ln.Addr().String()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("monitor: %w", err)
	}
}

// standaloneOpts are standalone's own flags.
type standaloneOpts struct {
	workers      int
	embeddedAddr string
}

func standaloneCommand(all []string) command {
	o := &standaloneOpts{}
	return command{name: "standalone", summary: "scheduler, workers and monitor in one process (embedded Redis when none is configured)",
		groups: all,
		flags: func(fs *pflag.FlagSet) {
			fs.IntVar(&o.workers, "workers", 2, "worker servers to run in this process")
			fs.StringVar(&o.embeddedAddr, "embedded-redis-addr", "127.0.0.1:0", "where the embedded Redis listens when no Redis is configured")
		},
		run: func(e *env, args []string) error { return runStandalone(e, o) }}
}

func runStandalone(e *env, o *standaloneOpts) error {
	cfg, nWorkers, embeddedAddr := e.cfg, o.workers, o.embeddedAddr
	if nWorkers < 1 || nWorkers > 64 {
		return usageErrorf("--workers: %d is out of range 1-64", nWorkers)
	}
	l := newLogger(e, cfg)
	ctx, stop := signalContext()
	defer stop()
	if !cfg.RedisAddrSet {
		mr, err := startEmbeddedRedis(ctx, embeddedAddr)
		if err != nil {
			return err
		}
		defer mr.Close()
		cfg.RedisAddr = mr.Addr()
		rl := logs.Named(l, logs.Redis)
		rl.Warn().Str("addr", mr.Addr()).
			Msg("EMBEDDED REDIS (miniredis): NOT DURABLE, everything is lost when this process exits; other workers may join with APMTEL_REDIS_ADDR=" + mr.Addr())
	}
	rt, err := openRuntime(cfg, "standalone")
	if err != nil {
		return err
	}
	defer rt.Close()
	return serveAll(ctx, cfg, rt, l, nWorkers)
}

// serveAll runs a scheduler, n workers and the monitor until ctx ends.
// They share the process's one Redis client.
func serveAll(ctx context.Context, cfg config.Config, rt *runtime, l zerolog.Logger, n int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n+2)
	start := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	// The monitor serves this process's health; n workers and a scheduler
	// cannot share one APMTEL_HTTP_ADDR.
	cfg.HTTPAddr = ""
	for i := 0; i < n; i++ {
		start(func() error { return serveWorker(ctx, cfg, rt, l) })
	}
	start(func() error { return serveScheduler(ctx, cfg, rt, l) })
	start(func() error { return serveMonitor(ctx, cfg, rt, l, nil) })
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// startEmbeddedRedis starts miniredis on addr. miniredis only expires keys
// when its clock moves, so a ticker moves it with real time.
func startEmbeddedRedis(ctx context.Context, addr string) (*miniredis.Miniredis, error) {
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr(addr); err != nil {
		return nil, fmt.Errorf("embedded redis: %w", err)
	}
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				mr.FastForward(time.Second)
			}
		}
	}()
	return mr, nil
}
