package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/apmtel/apmtel/internal/fleet"
	"github.com/apmtel/apmtel/internal/fleetstatus"
	"github.com/apmtel/apmtel/internal/run"
)

// ClusterStatuses are the values of apmtel_cluster_last_run_status's status
// label: how the cluster's newest run went, or running while it has not
// ended.
var ClusterStatuses = []string{string(run.OutcomeOK), string(run.OutcomeFailed), string(run.OutcomeCancelled), "running"}

// Clusters exports a few gauges per cluster of a fleet, the only metrics
// with a cluster label: when each cluster last succeeded, how its last run
// went and how long it took. Everything else about a cluster (its runs,
// tasks, errors, backoff) is in Redis and on the console's fleet page;
// Prometheus gets what an alert needs.
//
// The status is a state set — one series per status, 1 for the current one
// and 0 for the others — as Prometheus's instrumentation practice and
// OpenMetrics' StateSet recommend for an enum, rather than one series
// whose value encodes the status: a number means nothing in a query or an
// alert (`== 2`?) and cannot be summed per status, and a single series
// labelled with only the current status disappears and reappears as the
// status changes, so `for:` clauses and rate windows see gaps. Four
// statuses keep the cost at six series per cluster.
//
// Series are bounded: only the first limit clusters by name get them (a
// stable choice, so series do not churn between scrapes); the rest are
// counted in apmtel_cluster_metrics_overflow, never silently dropped.
//
// Like Runs, it reads Redis at scrape time (fleetstatus.Reader), from the
// Set current at that scrape: a removed cluster's series end with it.
type Clusters struct {
	src     fleet.Source
	rd      fleetstatus.Reader
	limit   int
	timeout time.Duration
	now     func() time.Time

	lastOK, status, duration, overflow, readOK *prometheus.Desc
}

// NewClusters reads the Set of src and each cluster's runs through rd at
// every scrape; limit is APMTEL_METRICS_CLUSTER_LIMIT.
func NewClusters(src fleet.Source, rd fleetstatus.Reader, limit int) *Clusters {
	cl := []string{"cluster"}
	return &Clusters{src: src, rd: rd, limit: max(limit, 0), timeout: 10 * time.Second, now: time.Now,
		lastOK: prometheus.NewDesc("apmtel_cluster_last_success_timestamp_seconds",
			"Unix time at which the cluster's newest run whose every task succeeded was sealed (absent: none in its history).", cl, nil),
		status: prometheus.NewDesc("apmtel_cluster_last_run_status",
			"1 for the status of the cluster's newest run (ok, failed, cancelled, running), 0 for the others; all 0 before its first run.",
			[]string{"cluster", "status"}, nil),
		duration: prometheus.NewDesc("apmtel_cluster_last_run_duration_seconds",
			"Wall time of the cluster's newest ended run, from creation to seal or cancellation.", cl, nil),
		overflow: prometheus.NewDesc("apmtel_cluster_metrics_overflow",
			"Clusters beyond APMTEL_METRICS_CLUSTER_LIMIT that have no per-cluster series (the first clusters by name have them).", nil, nil),
		readOK: prometheus.NewDesc("apmtel_cluster_scrape_ok",
			"1 when every cluster's runs could be read from Redis at this scrape, else 0 (the per-cluster series are then absent).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Clusters) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.lastOK, c.status, c.duration, c.overflow, c.readOK} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Clusters) Collect(ch chan<- prometheus.Metric) {
	set := c.src.Current()
	ch <- prometheus.MustNewConstMetric(c.overflow, prometheus.GaugeValue, float64(max(set.Len()-c.limit, 0)))
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	// Only the clusters that get series are read.
	names := set.Names()
	names = names[:min(len(names), c.limit)]
	states, err := c.rd.Read(ctx, names)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.readOK, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.readOK, prometheus.GaugeValue, 1)
	for _, row := range fleetstatus.Rows(set, states, fleetstatus.Schedule{}, c.now())[:len(names)] {
		if row.LastSuccessAt != nil {
			ch <- prometheus.MustNewConstMetric(c.lastOK, prometheus.GaugeValue, unix(*row.LastSuccessAt), row.Name)
		}
		current := ""
		if l := row.LastRun; l != nil {
			current = string(l.Outcome)
			if l.Status == run.StatusOpen || l.Status == run.StatusClosed {
				current = "running"
			}
			if l.Status.Terminal() && l.DurationMS > 0 {
				ch <- prometheus.MustNewConstMetric(c.duration, prometheus.GaugeValue, float64(l.DurationMS)/1000, row.Name)
			}
		}
		for _, s := range ClusterStatuses {
			v := 0.0
			if s == current {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.status, prometheus.GaugeValue, v, row.Name, s)
		}
	}
}
