package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
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
		if err := validateIndexPattern(name, v); err != nil {
			errs = append(errs, err)
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
	// RedisAddr is host:port of the Redis that holds the queues and run
	// state; with RedisSentinelMaster, a comma-separated list of Sentinels;
	// with RedisCluster, a comma-separated list of cluster nodes to start from.
	RedisAddr string
	// RedisSentinelMaster names the master the Sentinels at RedisAddr watch;
	// set, apmtel follows failovers.
	RedisSentinelMaster string
	// RedisSentinelPassword authenticates to the Sentinels themselves.
	RedisSentinelPassword string
	// RedisCluster connects to a Redis Cluster; apmtel's keys of one source
	// share a hash tag, so each of its scripts touches one slot.
	RedisCluster bool
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
	// SourceName names the source cluster in Redis keys and job ids
	// ("{<name>}" hash tag), so that one Redis can serve many source clusters.
	SourceName string
	// Telemetry is the cluster receiving the payload; unset means "write a file".
	Telemetry Cluster
	// TelemetryIndex is the index the payload is written to.
	TelemetryIndex string
	// TelemetryEndpoint is the base URL of an Elastic telemetry service
	// (Kibana's https://telemetry.elastic.co/); when set the payload is
	// POSTed to {endpoint}/v3/send/kibana-snapshot, encrypted as Kibana does.
	TelemetryEndpoint string
	// TelemetryJWKS is the path of a JSON file with the service's public
	// JWK set (RSA-OAEP keys); required with TelemetryEndpoint.
	TelemetryJWKS string
	// KibanaVersion is the Kibana version the envelope reports when the
	// source's saved objects do not tell it (stack_stats.kibana.versions,
	// the X-Elastic-Stack-Version header).
	KibanaVersion string

	Indices Indices

	// Interval is the time between two scheduled runs (Kibana: 12h).
	Interval time.Duration
	// OptIn false collects but never uploads.
	OptIn bool
	// TaskTimeout bounds one telemetry task (one job attempt).
	TaskTimeout time.Duration
	// SearchTimeout bounds one request to the source cluster; it is also sent
	// as the search body's shard-level "timeout" (Kibana's bodies say 5m).
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
	// OrphanMinAge is how long an entry of asynq's active list must have had
	// no usable task hash and no lease before a worker's janitor removes it
	// (internal/orphans).
	OrphanMinAge time.Duration
	// UploadRetryWindow is how long after sealing a failing upload is
	// retried; then the run's upload is marked failed (`apmtel upload RUN`
	// re-sends it).
	UploadRetryWindow time.Duration
	// CatchupGrace: at start, the scheduler runs the current slot when the
	// newest snapshot is stale, unless the next slot starts within this.
	// The scheduler uses at most a quarter of Interval (scheduler.CatchupGrace):
	// a grace as long as the interval would skip every catch-up.
	CatchupGrace time.Duration
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
	// LogLevel is zerolog's level name; LogFormat is "json" or "console".
	LogLevel  string
	LogFormat string
}

var kibanaVersion = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`)

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		RedisAddr:         "127.0.0.1:6379",
		KeyPrefix:         keys.DefaultPrefix,
		SourceName:        keys.DefaultSource,
		UploadRetryWindow: 72 * time.Hour,
		CatchupGrace:      10 * time.Minute,
		TelemetryIndex:    "xpack-phone-home",
		Indices:           DefaultIndices(),
		Interval:          12 * time.Hour,
		OptIn:             true,
		TaskTimeout:       5 * time.Minute,
		SearchTimeout:     5 * time.Minute,
		RunDeadline:       30 * time.Minute,
		MaxRetry:          3,
		Concurrency:       4,
		SearchConcurrency: 4,
		PollInterval:      200 * time.Millisecond,
		OrphanMinAge:      5 * time.Minute,
		HistoryLimit:      50,
		HistoryTTL:        7 * 24 * time.Hour,
		DataDir:           "data",
		MonitorAddr:       "127.0.0.1:8080",
		MonitorReadOnly:   true,
		LogLevel:          "info",
		LogFormat:         "console",
	}
}

// Validate returns every problem of c, each naming its environment variable.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	addrs := c.RedisAddrs()
	if len(addrs) == 0 {
		add("APMTEL_REDIS_ADDR: empty")
	}
	for _, a := range addrs {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			add("APMTEL_REDIS_ADDR: %q is not host:port", a)
		}
	}
	switch {
	case c.RedisCluster && c.RedisSentinelMaster != "":
		add("APMTEL_REDIS_CLUSTER and APMTEL_REDIS_SENTINEL_MASTER: choose one")
	case len(addrs) > 1 && !c.RedisCluster && c.RedisSentinelMaster == "":
		add("APMTEL_REDIS_ADDR: %d addresses need APMTEL_REDIS_SENTINEL_MASTER (Sentinels) or APMTEL_REDIS_CLUSTER=true (cluster nodes)", len(addrs))
	case c.RedisCluster && c.RedisDB != 0:
		add("APMTEL_REDIS_DB: a Redis Cluster has only database 0, got %d", c.RedisDB)
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
				add("%s_URL: %q is not an http(s) URL", cl.env, RedactURL(u))
			}
		}
		if cl.c.Username != "" && cl.c.Password == "" {
			add("%s_PASSWORD: must be set with %s_USERNAME", cl.env, cl.env)
		}
	}
	if c.TelemetryIndex == "" || strings.ContainsAny(c.TelemetryIndex, " ,*\"\\/|<>?#") || strings.ToLower(c.TelemetryIndex) != c.TelemetryIndex {
		add("APMTEL_TELEMETRY_INDEX: %q is not a valid index name", c.TelemetryIndex)
	}
	if c.MonitorToken != "" && (strings.TrimSpace(c.MonitorToken) != c.MonitorToken || len(c.MonitorToken) < 16) {
		add("APMTEL_MONITOR_TOKEN: must be at least 16 characters without leading or trailing blanks")
	}
	if err := keys.ValidSource(c.SourceName); err != nil {
		add("APMTEL_SOURCE_NAME: %v", err)
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
		{"APMTEL_UPLOAD_RETRY_WINDOW", c.UploadRetryWindow}, {"APMTEL_ORPHAN_MIN_AGE", c.OrphanMinAge},
	}
	for _, p := range positive {
		if p.d <= 0 {
			add("%s: must be a positive duration, got %s", p.env, p.d)
		}
	}
	if c.TelemetryEndpoint != "" {
		pu, err := url.Parse(c.TelemetryEndpoint)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			add("APMTEL_TELEMETRY_ENDPOINT: %q is not an http(s) URL", c.TelemetryEndpoint)
		}
		if c.TelemetryJWKS == "" {
			add("APMTEL_TELEMETRY_JWKS: required with APMTEL_TELEMETRY_ENDPOINT (the service's public key set)")
		}
		if c.Telemetry.Configured() {
			add("APMTEL_TELEMETRY_ENDPOINT: set either it or APMTEL_TELEMETRY_URL, not both")
		}
	}
	if c.KibanaVersion != "" && !kibanaVersion.MatchString(c.KibanaVersion) {
		add("APMTEL_KIBANA_VERSION: %q is not a version like 9.2.0", c.KibanaVersion)
	}
	if c.Interval > 0 && c.Interval < time.Minute {
		add("APMTEL_INTERVAL: %s is shorter than the minimum of 1m", c.Interval)
	}
	if c.TaskTimeout > 0 && c.RunDeadline > 0 && c.RunDeadline < c.TaskTimeout {
		add("APMTEL_RUN_DEADLINE: %s is shorter than APMTEL_TASK_TIMEOUT %s", c.RunDeadline, c.TaskTimeout)
	}
	if c.CatchupGrace < 0 {
		add("APMTEL_CATCHUP_GRACE: must not be negative, got %s", c.CatchupGrace)
	}
	// A run's keys carry the history TTL: it must outlive the run's deadline
	// and the upload's retry window, or runs expire mid-flight.
	if c.HistoryTTL > 0 && c.RunDeadline > 0 && c.UploadRetryWindow > 0 && c.HistoryTTL <= c.RunDeadline+c.UploadRetryWindow {
		add("APMTEL_HISTORY_TTL: %s must be longer than APMTEL_RUN_DEADLINE (%s) plus APMTEL_UPLOAD_RETRY_WINDOW (%s)",
			c.HistoryTTL, c.RunDeadline, c.UploadRetryWindow)
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

// RedisAddrs returns the addresses of APMTEL_REDIS_ADDR.
func (c Config) RedisAddrs() []string {
	var out []string
	for _, a := range strings.Split(c.RedisAddr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// RedactURL replaces the password of a URL's userinfo, so that no error
// message echoes it. Text that does not parse is cut at its last "@".
func RedactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		if u.User == nil && !strings.Contains(raw, "@") {
			return raw
		}
		if u.User == nil {
			return "[redacted]@" + raw[strings.LastIndex(raw, "@")+1:]
		}
		u.User = nil
		s := u.String()
		if i := strings.Index(s, "://"); i >= 0 {
			return s[:i+3] + "[redacted]@" + s[i+3:]
		}
		return "[redacted]@" + s
	}
	if i := strings.LastIndex(raw, "@"); i >= 0 {
		return "[redacted]@" + raw[i+1:]
	}
	return raw
}
