package config

import (
	"net"
	"strings"
)

// HTTP is what apmtel serves over HTTP: the monitor (Asynqmon, console) and
// the health and metrics endpoints of workers and schedulers.
type HTTP struct {
	// MonitorAddr is where `apmtel monitor` serves Asynqmon.
	MonitorAddr string
	// MonitorToken, when set, is required as a bearer token (or basic-auth
	// password) by the monitor; it is mandatory on a non-loopback address.
	MonitorToken string
	// MonitorReadOnly serves Asynqmon without its mutating actions and
	// refuses every state-changing request; on by default, since a writable
	// monitor can pause queues and delete jobs.
	MonitorReadOnly bool
	// MonitorHosts are further host names the monitor and the health/metrics
	// endpoints may be reached by (behind a proxy); a loopback server answers
	// only to its own address and loopback names otherwise (DNS rebinding).
	MonitorHosts []string
	// HTTPAddr, when set, is where `apmtel worker` and `apmtel scheduler`
	// serve /healthz, /readyz and /metrics. Empty serves nothing. Like the
	// monitor, a non-loopback address requires MonitorToken, which then
	// guards /metrics (the health endpoints stay open for probes).
	HTTPAddr string
	// MetricsClusterLimit is how many clusters of a fleet get per-cluster
	// series (a cluster label) on the monitor's /metrics; the rest are
	// counted in apmtel_cluster_metrics_overflow, so a large fleet cannot
	// blow up the series count of the Prometheus that scrapes it.
	MetricsClusterLimit int
}

// maxMetricsClusterLimit bounds APMTEL_METRICS_CLUSTER_LIMIT: six series per
// cluster, so 100,000 clusters are 600,000 series, already more than one
// Prometheus should take from one target.
const maxMetricsClusterLimit = 100000

// DefaultHTTP serves a read-only monitor on loopback and no health endpoint.
func DefaultHTTP() HTTP {
	return HTTP{MonitorAddr: "127.0.0.1:8080", MonitorReadOnly: true, MetricsClusterLimit: 1000}
}

// Validate checks the addresses and the token's shape (never echoing it).
func (h HTTP) Validate() error {
	var p problems
	if _, port, err := net.SplitHostPort(h.MonitorAddr); err != nil || port == "" {
		p.add("APMTEL_MONITOR_ADDR", "%q is not host:port (use 127.0.0.1:8080 or :8080)", h.MonitorAddr)
	}
	if h.MonitorToken != "" && (strings.TrimSpace(h.MonitorToken) != h.MonitorToken || len(h.MonitorToken) < 16) {
		p.add("APMTEL_MONITOR_TOKEN", "must be at least 16 characters without leading or trailing blanks")
	}
	p.bound("APMTEL_METRICS_CLUSTER_LIMIT", int64(h.MetricsClusterLimit), 0, maxMetricsClusterLimit)
	if h.HTTPAddr != "" {
		if _, port, err := net.SplitHostPort(h.HTTPAddr); err != nil || port == "" {
			p.add("APMTEL_HTTP_ADDR", "%q is not host:port (use 127.0.0.1:8081 or :8081)", h.HTTPAddr)
		}
	}
	return p.err()
}
