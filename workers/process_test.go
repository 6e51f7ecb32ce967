package workers_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/internal/uploader"
	"github.com/apmtel/apmtel/scheduler"
	"github.com/apmtel/apmtel/workers"
)

// A worker process assembles its own parts (limiter, source, handlers,
// server, janitor), runs a job, and stops them all when its context ends.
func TestProcessRunsAndStops(t *testing.T) {
	t.Parallel()
	rdb, _ := testenv.RedisDB(t)
	cfg := config.Default()
	cfg.SearchConcurrency, cfg.PollInterval = 2, 50*time.Millisecond
	st := run.NewStore(rdb, keys.New(""), time.Hour, 50)
	cl := asynq.NewClientFromRedisClient(rdb)
	var gated bool
	p, err := workers.NewProcess(workers.Options{Config: cfg, RDB: rdb, Runs: st, Registry: telemetry.Default(), Enqueuer: cl,
		Sink: uploader.FileSink{Dir: t.TempDir()}, Logger: zerolog.Nop(),
		NewSource: func(gate es.Gate) (es.Doer, error) { gated = gate != nil; return fakeSource{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if !gated {
		t.Error("the source client is not behind the cluster-wide limiter")
	}
	ready := p.Ready()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	testenv.Eventually(t, 10*time.Second, "the worker ready", func() bool { return ready.Run(context.Background()) == nil })

	s := &scheduler.Scheduler{Config: cfg, Runs: st, Registry: telemetry.Default(), Enqueuer: cl, Logger: zerolog.Nop()}
	if _, err := s.StartRun(context.Background(), "manual-p", "manual", run.KindPartial, []string{"cloud"}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "the run sealed by the worker", func() bool {
		r, err := st.Get(context.Background(), "manual-p")
		return err == nil && r.Status == run.StatusSealed
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(cfg.Timing().ShutdownTimeout + 5*time.Second):
		t.Fatal("the worker did not stop")
	}
	if err := ready.Run(context.Background()); err == nil {
		t.Error("a stopped worker is still ready")
	}
}

// A source client that cannot be made fails the assembly, with its error.
func TestProcessSourceError(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	want := errors.New("APMTEL_SOURCE_URL: the source cluster is not configured")
	_, err := workers.NewProcess(workers.Options{Config: config.Default(), RDB: rdb, Runs: run.NewStore(rdb, keys.New(""), time.Hour, 50),
		NewSource: func(es.Gate) (es.Doer, error) { return nil, want }})
	if !errors.Is(err, want) {
		t.Errorf("NewProcess: %v, want %v", err, want)
	}
}

// One cluster: a job of another source cluster is refused, naming both.
func TestOneClusterRefusesOtherSources(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	c := workers.OneCluster{Runs: run.NewStore(rdb, keys.NewFor("", "prod"), time.Hour, 50)}
	if got, err := c.Cluster("prod"); err != nil || got.Runs != c.Runs {
		t.Errorf("own source: %v", err)
	}
	if _, err := c.Cluster(keys.DefaultSource); err == nil || !strings.Contains(err.Error(), `"default"`) || !strings.Contains(err.Error(), `"prod"`) {
		t.Errorf("other source: %v", err)
	}
}
