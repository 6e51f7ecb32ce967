package config

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"
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
	var errs problems
	check := func(name, v string) {
		if strings.TrimSpace(v) == "" {
			errs.add(name, "index pattern is empty")
			return
		}
		if err := validateIndexPattern(name, v); err != nil {
			errs = append(errs, err)
			return
		}
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			if p == "" || strings.ContainsAny(p, " \"\\/|<>?#") {
				errs.add(name, "invalid index pattern %q", p)
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
	return errs.err()
}

// Config is the whole configuration of every apmtel component, in parts:
// each part has its defaults and its Validate in its own file, and its
// fields are promoted, so cfg.RedisAddr reads cfg.Redis.RedisAddr.
type Config struct {
	Redis
	SourceCluster
	Upload
	Run
	Worker
	HTTP
	Logging
	Fleet
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		Redis:         DefaultRedis(),
		SourceCluster: DefaultSourceCluster(),
		Upload:        DefaultUpload(),
		Run:           DefaultRun(),
		Worker:        DefaultWorker(),
		HTTP:          DefaultHTTP(),
		Logging:       DefaultLogging(),
		Fleet:         DefaultFleet(),
	}
}

// Validate returns every problem of c, each naming its environment variable
// (a *SettingError), never a secret's value.
func (c Config) Validate() error {
	return errors.Join(c.Redis.Validate(), c.SourceCluster.Validate(), c.Upload.Validate(),
		c.Run.Validate(), c.Worker.Validate(), c.HTTP.Validate(), c.Logging.Validate(),
		c.Fleet.Validate(), c.Fleet.spreadWithin(c.Interval))
}

// SettingError is a problem with one setting, named by its variable.
type SettingError struct {
	Env string
	Err error
}

func (e *SettingError) Error() string { return e.Env + ": " + e.Err.Error() }
func (e *SettingError) Unwrap() error { return e.Err }

// problems collects a part's SettingErrors.
type problems []error

func (p *problems) add(env, format string, a ...any) {
	*p = append(*p, &SettingError{Env: env, Err: fmt.Errorf(format, a...)})
}

func (p problems) err() error { return errors.Join(p...) }

// bound refuses a number outside [lo, hi]: every numeric setting has both
// bounds, so a typo of a few zeros is an error, not a busy loop or a
// runaway allocation.
func (p *problems) bound(env string, v, lo, hi int64) {
	if v < lo || v > hi {
		p.add(env, "%d is out of range %d-%d", v, lo, hi)
	}
}

// within refuses a duration outside [lo, hi].
func (p *problems) within(env string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		p.add(env, "%s is out of range %s-%s", FormatDuration(d), FormatDuration(lo), FormatDuration(hi))
	}
}

// urls refuses a URL list item that is empty or not http(s), without
// echoing a password it may carry.
func (p *problems) urls(env string, raw []string) {
	for _, u := range raw {
		if strings.TrimSpace(u) == "" {
			p.add(env, "empty item in the comma-separated list")
			continue
		}
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			p.add(env, "%q is not an http(s) URL", RedactURL(u))
		}
	}
}

// Secrets returns the non-empty secret values of c, so logs can be checked for leaks.
func (c Config) Secrets() []string {
	var out []string
	for _, s := range []string{c.RedisPassword, c.RedisSentinelPassword, c.Source.Password, c.Source.APIKey, c.Telemetry.Password, c.Telemetry.APIKey, c.MonitorToken} {
		if s != "" {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// FormatDuration writes d as people write it: 12h, 5m, 200ms, 1h30m.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
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
