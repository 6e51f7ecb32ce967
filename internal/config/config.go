package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/apmtel/apmtel/internal/keys"
)

// Cluster is how to reach one Elasticsearch cluster.
type Cluster struct {
	// URLs are the cluster's HTTP endpoints. Empty means "not configured".
	URLs []string
	// Username and Password give HTTP basic authentication.
	Username string
	Password string
	// APIKey is a base64 "id:key" API key; it takes precedence over basic auth.
	APIKey string
	// CACert is the path of a PEM file with the CA that signed the cluster's certificate.
	CACert string
	// Insecure turns off TLS certificate verification. Logged loudly when set.
	Insecure bool
}

// Configured reports whether the cluster has at least one URL.
func (c Cluster) Configured() bool { return len(c.URLs) > 0 }

// Indices are the APM index patterns, each a comma-separated list, as in
// Kibana's xpack.apm.indices.* settings (spec §1.4).
type Indices struct {
	Transaction string `json:"transaction"`
	Span        string `json:"span"`
	Error       string `json:"error"`
	Metric      string `json:"metric"`
	Onboarding  string `json:"onboarding"`
	// AgentConfiguration is Kibana's agent central-configuration index.
	AgentConfiguration string `json:"agent_configuration"`
	// Kibana is the pattern of Kibana's saved-object indices.
	Kibana string `json:"kibana"`
	// MetricsDataStreamPrefix prefixes the hard-coded metrics-apm.* data-stream
	// patterns (global_labels, indices_stats). Empty in production; tests set it
	// to isolate their data.
	MetricsDataStreamPrefix string `json:"metrics_data_stream_prefix,omitempty"`
}

// DefaultIndices returns Kibana's defaults.
func DefaultIndices() Indices {
	return Indices{
		Transaction:        "traces-apm*,apm-*,traces-*.otel-*",
		Span:               "traces-apm*,apm-*,traces-*.otel-*",
		Error:              "logs-apm*,apm-*,logs-*.otel-*",
		Metric:             "metrics-apm*,apm-*,metrics-*.otel-*",
		Onboarding:         "apm-*",
		AgentConfiguration: ".apm-agent-configuration",
		Kibana:             ".kibana*",
	}
}

// Validate checks that every pattern is present and well formed.
func (ix Indices) Validate() error {
	var errs []error
	check := func(name, v string) {
		if strings.TrimSpace(v) == "" {
			errs = append(errs, fmt.Errorf("%s: index pattern is empty", name))
			return
		}
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			if p == "" || strings.ContainsAny(p, " \"\\/|<>?#") {
				errs = append(errs, fmt.Errorf("%s: invalid index pattern %q", name, p))
			}
		}
	}
	check("APMTEL_INDICES_TRANSACTION", ix.Transaction)
	check("APMTEL_INDICES_SPAN", ix.Span)
	check("APMTEL_INDICES_ERROR", ix.Error)
	check("APMTEL_INDICES_METRIC", ix.Metric)
	check("APMTEL_INDICES_ONBOARDING", ix.Onboarding)
	check("APMTEL_INDICES_AGENT_CONFIGURATION", ix.AgentConfiguration)
	check("APMTEL_INDICES_KIBANA", ix.Kibana)
	return errors.Join(errs...)
}

// Config is the whole configuration of every apmtel component.
type Config struct {
	// RedisAddr is host:port of the Redis that holds the queues and snapshots.
	RedisAddr string
	// RedisAddrSet records whether RedisAddr was given explicitly; standalone
	// mode starts an embedded Redis only when it was not.
	RedisAddrSet  bool
	RedisPassword string
	RedisDB       int
	// RedisTLS connects to Redis over TLS.
	RedisTLS bool
	// RedisCACert is a PEM file of the CA that signed Redis's certificate
	// (implies RedisTLS); empty uses the system roots.
	RedisCACert string
	// KeyPrefix namespaces apmtel's Redis keys.
	KeyPrefix string

	// Source is the cluster holding the APM data.
	Source Cluster
	// Telemetry is the cluster receiving the payload; unset means "write a file".
	Telemetry Cluster
	// TelemetryIndex is the index the payload is written to.
	TelemetryIndex string

	Indices Indices

	// Interval is the time between two scheduled runs (Kibana: 12h).
	Interval time.Duration
	// OptIn false collects but never uploads.
	OptIn bool
	// TaskTimeout bounds one telemetry task (one job attempt).
	TaskTimeout time.Duration
	// SearchTimeout bounds one request to the source cluster; it is also sent
	// as the search body's shard-level "timeout".
	SearchTimeout time.Duration
	// RunDeadline is how long after its creation a run is finalized even if
	// tasks are still outstanding.
	RunDeadline time.Duration
	// MaxRetry is how often a failed task or upload is retried.
	MaxRetry int
	// Concurrency is the number of jobs one worker runs at once.
	Concurrency int
	// SearchConcurrency caps the requests all workers together send to the
	// source cluster at once (a semaphore in Redis); 0 disables the cap.
	SearchConcurrency int
	// PollInterval is how often an idle worker checks the queues (asynq TaskCheckInterval).
	PollInterval time.Duration
	// HistoryLimit is how many runs are kept in Redis.
	HistoryLimit int
	// HistoryTTL is how long a run's record and snapshot are kept in Redis.
	HistoryTTL time.Duration
	// DataDir is where payloads are written when no telemetry cluster is configured.
	DataDir string
	// MonitorAddr is where `apmtel monitor` serves Asynqmon.
	MonitorAddr string
	// MonitorToken, when set, is required as a bearer token (or basic-auth
	// password) by the monitor; it is mandatory on a non-loopback address.
	MonitorToken string
	// MonitorReadOnly serves Asynqmon without its mutating actions.
	MonitorReadOnly bool
	// HTTPAddr, when set, is where `apmtel worker` and `apmtel scheduler`
	// serve /healthz, /readyz and /metrics. Empty serves nothing. Like the
	// monitor, a non-loopback address requires MonitorToken, which then
	// guards /metrics (the health endpoints stay open for probes).
	HTTPAddr string
	// LogLevel is zerolog's level name; LogFormat is "json" or "console".
	LogLevel  string
	LogFormat string
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		RedisAddr:         "127.0.0.1:6379",
		KeyPrefix:         keys.DefaultPrefix,
		TelemetryIndex:    "xpack-phone-home",
		Indices:           DefaultIndices(),
		Interval:          12 * time.Hour,
		OptIn:             true,
		TaskTimeout:       5 * time.Minute,
		SearchTimeout:     2 * time.Minute,
		RunDeadline:       30 * time.Minute,
		MaxRetry:          3,
		Concurrency:       4,
		SearchConcurrency: 4,
		PollInterval:      200 * time.Millisecond,
		HistoryLimit:      50,
		HistoryTTL:        7 * 24 * time.Hour,
		DataDir:           "data",
		MonitorAddr:       "127.0.0.1:8080",
		LogLevel:          "info",
		LogFormat:         "console",
	}
}

// Validate returns every problem of c, each naming its environment variable.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.RedisAddr == "" || !strings.Contains(c.RedisAddr, ":") {
		add("APMTEL_REDIS_ADDR: %q is not host:port", c.RedisAddr)
	}
	if c.RedisDB < 0 {
		add("APMTEL_REDIS_DB: %d is negative", c.RedisDB)
	}
	if strings.ContainsAny(c.KeyPrefix, "{} ") || c.KeyPrefix == "" {
		add("APMTEL_KEY_PREFIX: %q must be non-empty without braces or spaces", c.KeyPrefix)
	}
	for _, cl := range []struct {
		env string
		c   Cluster
	}{{"APMTEL_SOURCE", c.Source}, {"APMTEL_TELEMETRY", c.Telemetry}} {
		for _, u := range cl.c.URLs {
			pu, err := url.Parse(u)
			if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
				add("%s_URL: %q is not an http(s) URL", cl.env, u)
			}
		}
		if cl.c.Username != "" && cl.c.Password == "" {
			add("%s_PASSWORD: must be set with %s_USERNAME", cl.env, cl.env)
		}
	}
	if c.TelemetryIndex == "" || strings.ContainsAny(c.TelemetryIndex, " ,*\"\\/|<>?#") || strings.ToLower(c.TelemetryIndex) != c.TelemetryIndex {
		add("APMTEL_TELEMETRY_INDEX: %q is not a valid index name", c.TelemetryIndex)
	}
	if err := c.Indices.Validate(); err != nil {
		errs = append(errs, err)
	}
	positive := []struct {
		env string
		d   time.Duration
	}{
		{"APMTEL_INTERVAL", c.Interval}, {"APMTEL_TASK_TIMEOUT", c.TaskTimeout},
		{"APMTEL_SEARCH_TIMEOUT", c.SearchTimeout}, {"APMTEL_RUN_DEADLINE", c.RunDeadline},
		{"APMTEL_POLL_INTERVAL", c.PollInterval}, {"APMTEL_HISTORY_TTL", c.HistoryTTL},
	}
	for _, p := range positive {
		if p.d <= 0 {
			add("%s: must be a positive duration, got %s", p.env, p.d)
		}
	}
	if c.Interval > 0 && c.Interval < time.Minute {
		add("APMTEL_INTERVAL: %s is shorter than the minimum of 1m", c.Interval)
	}
	if c.TaskTimeout > 0 && c.RunDeadline > 0 && c.RunDeadline < c.TaskTimeout {
		add("APMTEL_RUN_DEADLINE: %s is shorter than APMTEL_TASK_TIMEOUT %s", c.RunDeadline, c.TaskTimeout)
	}
	if c.MaxRetry < 0 || c.MaxRetry > 25 {
		add("APMTEL_MAX_RETRY: %d is out of range 0-25", c.MaxRetry)
	}
	if c.Concurrency < 1 || c.Concurrency > 256 {
		add("APMTEL_CONCURRENCY: %d is out of range 1-256", c.Concurrency)
	}
	if c.SearchConcurrency < 0 {
		add("APMTEL_SEARCH_CONCURRENCY: %d is negative", c.SearchConcurrency)
	}
	if c.HTTPAddr != "" {
		if _, port, err := net.SplitHostPort(c.HTTPAddr); err != nil || port == "" {
			add("APMTEL_HTTP_ADDR: %q is not host:port (use 127.0.0.1:8081 or :8081)", c.HTTPAddr)
		}
	}
	if c.HistoryLimit < 1 {
		add("APMTEL_HISTORY_LIMIT: must be at least 1, got %d", c.HistoryLimit)
	}
	switch c.LogFormat {
	case "json", "console":
	default:
		add("APMTEL_LOG_FORMAT: %q is not json or console", c.LogFormat)
	}
	switch c.LogLevel {
	case "trace", "debug", "info", "warn", "error":
	default:
		add("APMTEL_LOG_LEVEL: %q is not one of trace, debug, info, warn, error", c.LogLevel)
	}
	return errors.Join(errs...)
}
