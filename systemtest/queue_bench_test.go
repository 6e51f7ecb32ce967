package systemtest

import (
	"context"
	be "encoding/binary"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/jobs"
	"github.com/apmtel/apmtel/workers"
)

// BenchmarkQueueOverhead measures enqueue → handler start of jobs on the
// worker server apmtel runs (workers.NewServer, poll interval 100 ms), one
// job at a time every 5 ms, so it is latency, not throughput. Issue 13's
// target: p99 ≤ 150 ms. Run: go test -run '^$' -bench QueueOverhead -benchtime 1000x ./systemtest
func BenchmarkQueueOverhead(b *testing.B) {
	rdb, db := testenv.RedisDB(b)
	opt := asynq.RedisClientOpt{Addr: testenv.RedisAddr(b), DB: db}
	cfg := config.Default()
	cfg.PollInterval, cfg.Concurrency = 100*time.Millisecond, 4
	srv := workers.NewServer(cfg, rdb, zerolog.Nop())
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	done := make(chan struct{}, b.N)
	mux := asynq.NewServeMux()
	mux.HandleFunc("bench:noop", func(ctx context.Context, t *asynq.Task) error {
		sent := time.Unix(0, int64(be.BigEndian.Uint64(t.Payload())))
		mu.Lock()
		lat = append(lat, time.Since(sent))
		mu.Unlock()
		done <- struct{}{}
		return nil
	})
	if err := srv.Start(mux); err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	client := asynq.NewClient(opt)
	defer client.Close()
	insp := asynq.NewInspector(opt)
	defer insp.Close()
	q := jobs.QueueCollect
	testenv.Eventually(b, 10*time.Second, "the worker server's heartbeat", func() bool {
		servers, err := insp.Servers()
		return err == nil && len(servers) == 1
	})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var p [8]byte
		be.BigEndian.PutUint64(p[:], uint64(time.Now().UnixNano()))
		if _, err := client.Enqueue(asynq.NewTask("bench:noop", p[:]), asynq.Queue(q)); err != nil {
			b.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := 0; i < b.N; i++ {
		<-done
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}
