package cli

import (
	"net/http"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/metrics"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/jobs"
)

// monitorMetrics is the monitor's /metrics: process, queues and the run
// counters read from the history (internal/metrics). Build it once per
// monitor: it remembers which runs it counted.
func monitorMetrics(insp *asynq.Inspector, rdb redis.UniversalClient, st *run.Store, cfg config.Config) http.Handler {
	return metrics.Handler(metrics.Monitor(insp, rdb, st, 2*cfg.HistoryLimit, jobs.QueueCollect, jobs.QueueControl))
}

// processMetrics is a worker's or the scheduler's /metrics: process and
// queues, no run counters (the monitor counts each run once).
func processMetrics(rdb redis.UniversalClient) http.Handler {
	return metrics.Handler(metrics.Process(asynq.NewInspectorFromRedisClient(rdb), rdb, jobs.QueueCollect, jobs.QueueControl))
}
