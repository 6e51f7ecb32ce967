package metrics

import (
	"net/http"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/version"
	"github.com/apmtel/apmtel/internal/webguard"
)

const namespace = "apmtel"

// NewRegistry returns a registry with the metrics every apmtel process
// exports: Go runtime, process, and apmtel_build_info.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		BuildInfo(version.Get()),
		webguard.Collector(),
	)
	return reg
}

// BuildInfo is apmtel_build_info: 1, with the build as labels (the
// Prometheus convention for joining a version onto other series).
func BuildInfo(v version.Info) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help:        "A metric with a constant '1' value labelled by the apmtel build's version, commit and Go version.",
		ConstLabels: prometheus.Labels{"version": v.Version, "commit": v.Commit, "goversion": v.GoVersion},
	})
	g.Set(1)
	return g
}

// Handler serves reg in the Prometheus exposition formats.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// Process is the registry of a worker or the scheduler: the common metrics
// and the queue gauges. Run counters come from the monitor only, so that
// many replicas do not each report the same runs.
//
// rdb (nil: none) is read for orphaned active entries (internal/orphans).
func Process(insp *asynq.Inspector, rdb redis.UniversalClient, queues ...string) *prometheus.Registry {
	reg := NewRegistry()
	reg.MustRegister(NewQueues(insp, rdb, queues...))
	return reg
}

// Monitor is the monitor's registry: the common metrics, the queue gauges
// and the run counters read from st (window: how many of the newest runs
// each scrape reads; give at least the history limit).
func Monitor(insp *asynq.Inspector, rdb redis.UniversalClient, st *run.Store, window int, queues ...string) *prometheus.Registry {
	reg := Process(insp, rdb, queues...)
	reg.MustRegister(NewRuns(st, window))
	return reg
}
