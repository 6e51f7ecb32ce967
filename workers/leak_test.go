package workers_test

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

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

// flakySource fails every search with a 503 and blocks others until ctx ends,
// like an overloaded cluster.
type flakySource struct{}

func (flakySource) Do(ctx context.Context, r es.Request) ([]byte, error) {
	if r.Endpoint == "_search" {
		return nil, &es.Error{Status: 503, Type: "unavailable"}
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// A worker server that runs a whole run against a failing, hanging source
// and is shut down leaves no goroutine behind.
func TestNoGoroutineLeak(t *testing.T) {
	rdb, db := testenv.RedisDB(t)
	opt := asynq.RedisClientOpt{Addr: testenv.RedisAddr(t), DB: db}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	cfg := config.Default()
	cfg.MaxRetry, cfg.TaskTimeout, cfg.SearchTimeout, cfg.PollInterval = 0, time.Second, time.Second, 50*time.Millisecond
	st := run.NewStore(rdb, keys.New(""), time.Hour, 50)
	cl := asynq.NewClient(opt)
	h := workers.NewHandlers(workers.Deps{Config: cfg, Clusters: workers.OneCluster{Runs: st, Executor: workers.NewExecutor(cfg, flakySource{})}, Registry: telemetry.Default(),
		Sink: uploader.FileSink{Dir: t.TempDir()}, Enqueuer: cl, Logger: zerolog.Nop()})
	srv := workers.NewServer(cfg, rdb, zerolog.Nop())
	if err := srv.Start(workers.NewMux(h)); err != nil {
		t.Fatal(err)
	}
	sch := &scheduler.Scheduler{Config: cfg, Runs: st, Registry: telemetry.Default(), Enqueuer: cl, Logger: zerolog.Nop()}
	if _, err := sch.StartRun(context.Background(), "leak-1", "manual", run.KindFull, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		r, err := st.Get(context.Background(), "leak-1")
		if err == nil && r.Status == run.StatusSealed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run not finalized: %+v %v", r, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	res, _ := st.Results(context.Background(), "leak-1")
	failed := 0
	for _, rec := range res {
		if rec.Status != run.TaskOK {
			failed++
		}
	}
	if failed < 15 {
		t.Errorf("only %d tasks failed against a failing source", failed)
	}
	srv.Shutdown()
	cl.Close()
	rdb.Close()
}
