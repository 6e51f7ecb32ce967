package cli

import (
	"net/http"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/fleet"
	"github.com/apmtel/apmtel/internal/fleetstatus"
	"github.com/apmtel/apmtel/internal/metrics"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/jobs"
)

// monitorMetrics is the monitor's /metrics: process, queues and the run
// counters read from the history (internal/metrics). Build it once per
// monitor: it remembers which runs it counted.
func monitorMetrics(insp *asynq.Inspector, rdb redis.UniversalClient, st *run.Store, cfg config.Config, src fleet.Source, rd fleetstatus.Reader) http.Handler {
	reg := metrics.Monitor(insp, rdb, st, 2*cfg.HistoryLimit, jobs.QueueCollect, jobs.QueueControl)
	// A few gauges per cluster, bounded by APMTEL_METRICS_CLUSTER_LIMIT.
	reg.MustRegister(metrics.NewClusters(src, rd, cfg.MetricsClusterLimit))
	return metrics.Handler(reg)
}

// processMetrics is a worker's or the scheduler's /metrics: process and
// queues, no run counters (the monitor counts each run once).
func processMetrics(rdb redis.UniversalClient) http.Handler {
	return metrics.Handler(metrics.Process(asynq.NewInspectorFromRedisClient(rdb), rdb, jobs.QueueCollect, jobs.QueueControl))
}
