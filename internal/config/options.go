package config

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Option is one setting: its environment variable, its flag and how to parse it.
type Option struct {
	Env  string
	Flag string
	Help string
	// Secret options are never printed with their value, and have no flag.
	Secret bool
	// Group says which commands read the option (see FlagGroups); a command
	// offers flags only for the groups it reads, every option keeps its
	// environment variable.
	Group string
	set   func(c *Config, v string) error
}

func str(p func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *p(c) = v; return nil }
}

func list(p func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error {
		var out []string
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		*p(c) = out
		return nil
	}
}

func boolean(p func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not a boolean (true/false)", v)
		}
		*p(c) = b
		return nil
	}
}

func integer(p func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		*p(c) = n
		return nil
	}
}

func duration(p func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration (like 30s, 5m, 12h)", v)
		}
		*p(c) = d
		return nil
	}
}

func clusterOptions(prefix, flagPrefix, group, what string, get func(*Config) *Cluster) []Option {
	return []Option{
		{Env: prefix + "_URL", Group: group, Flag: flagPrefix + "-url", Help: "comma-separated URLs of the " + what,
			set: list(func(c *Config) *[]string { return &get(c).URLs })},
		{Env: prefix + "_USERNAME", Group: group, Flag: flagPrefix + "-username", Help: "basic-auth user of the " + what,
			set: str(func(c *Config) *string { return &get(c).Username })},
		{Env: prefix + "_PASSWORD", Group: group, Flag: flagPrefix + "-password", Help: "basic-auth password of the " + what, Secret: true,
			set: str(func(c *Config) *string { return &get(c).Password })},
		{Env: prefix + "_API_KEY", Group: group, Flag: flagPrefix + "-api-key", Help: "API key (base64 id:key) of the " + what, Secret: true,
			set: str(func(c *Config) *string { return &get(c).APIKey })},
		{Env: prefix + "_CA_CERT", Group: group, Flag: flagPrefix + "-ca-cert", Help: "PEM CA file for the " + what,
			set: str(func(c *Config) *string { return &get(c).CACert })},
		{Env: prefix + "_INSECURE", Group: group, Flag: flagPrefix + "-insecure", Help: "skip TLS verification for the " + what + " (unsafe)",
			set: boolean(func(c *Config) *bool { return &get(c).Insecure })},
	}
}

// Options lists every setting, in the order the README documents them.
func Options() []Option {
	opts := []Option{
		{Env: "APMTEL_REDIS_ADDR", Group: "global", Flag: "redis-addr", Help: "Redis host:port (default 127.0.0.1:6379)",
			set: func(c *Config, v string) error { c.RedisAddr = v; c.RedisAddrSet = true; return nil }},
		{Env: "APMTEL_REDIS_SENTINEL_MASTER", Group: "global", Flag: "redis-sentinel-master", Help: "master name: APMTEL_REDIS_ADDR lists Sentinels",
			set: str(func(c *Config) *string { return &c.RedisSentinelMaster })},
		{Env: "APMTEL_REDIS_SENTINEL_PASSWORD", Group: "global", Flag: "redis-sentinel-password", Help: "password of the Sentinels themselves", Secret: true,
			set: str(func(c *Config) *string { return &c.RedisSentinelPassword })},
		{Env: "APMTEL_REDIS_CLUSTER", Group: "global", Flag: "redis-cluster", Help: "APMTEL_REDIS_ADDR lists Redis Cluster nodes",
			set: boolean(func(c *Config) *bool { return &c.RedisCluster })},
		{Env: "APMTEL_REDIS_PASSWORD", Group: "global", Flag: "redis-password", Help: "Redis password", Secret: true,
			set: str(func(c *Config) *string { return &c.RedisPassword })},
		{Env: "APMTEL_REDIS_DB", Group: "global", Flag: "redis-db", Help: "Redis database number (default 0)",
			set: integer(func(c *Config) *int { return &c.RedisDB })},
		{Env: "APMTEL_REDIS_TLS", Group: "global", Flag: "redis-tls", Help: "connect to Redis over TLS",
			set: boolean(func(c *Config) *bool { return &c.RedisTLS })},
		{Env: "APMTEL_REDIS_CA_CERT", Group: "global", Flag: "redis-ca-cert", Help: "PEM CA file for Redis TLS (implies APMTEL_REDIS_TLS)",
			set: str(func(c *Config) *string { return &c.RedisCACert })},
		{Env: "APMTEL_KEY_PREFIX", Group: "global", Flag: "key-prefix", Help: "prefix of apmtel's Redis keys (default apmtel)",
			set: str(func(c *Config) *string { return &c.KeyPrefix })},
	}
	opts = append(opts, clusterOptions("APMTEL_SOURCE", "source", "source", "source cluster (APM data)", func(c *Config) *Cluster { return &c.Source })...)
	opts = append(opts, clusterOptions("APMTEL_TELEMETRY", "telemetry", "telemetry", "telemetry cluster (upload target)", func(c *Config) *Cluster { return &c.Telemetry })...)
	opts = append(opts,
		Option{Env: "APMTEL_SOURCE_NAME", Group: "global", Flag: "source-name", Help: "short name of the source cluster; scopes run keys and job ids (default default)",
			set: str(func(c *Config) *string { return &c.SourceName })},
		Option{Env: "APMTEL_TELEMETRY_INDEX", Group: "telemetry", Flag: "telemetry-index", Help: "index receiving the payload (default xpack-phone-home)",
			set: str(func(c *Config) *string { return &c.TelemetryIndex })},
		Option{Env: "APMTEL_TELEMETRY_ENDPOINT", Group: "telemetry", Flag: "telemetry-endpoint", Help: "Elastic telemetry service base URL; the payload goes to {endpoint}/v3/send/kibana-snapshot, JWE-encrypted",
			set: str(func(c *Config) *string { return &c.TelemetryEndpoint })},
		Option{Env: "APMTEL_TELEMETRY_JWKS", Group: "telemetry", Flag: "telemetry-jwks", Help: "JSON file with the telemetry service's public JWK set (RSA-OAEP)",
			set: str(func(c *Config) *string { return &c.TelemetryJWKS })},
		Option{Env: "APMTEL_KIBANA_VERSION", Group: "source", Flag: "kibana-version", Help: "Kibana version the envelope reports when the saved objects do not tell it",
			set: str(func(c *Config) *string { return &c.KibanaVersion })},
		Option{Env: "APMTEL_INDICES_TRANSACTION", Group: "indices", Flag: "indices-transaction", Help: "transaction index patterns",
			set: str(func(c *Config) *string { return &c.Indices.Transaction })},
		Option{Env: "APMTEL_INDICES_SPAN", Group: "indices", Flag: "indices-span", Help: "span index patterns",
			set: str(func(c *Config) *string { return &c.Indices.Span })},
		Option{Env: "APMTEL_INDICES_ERROR", Group: "indices", Flag: "indices-error", Help: "error index patterns",
			set: str(func(c *Config) *string { return &c.Indices.Error })},
		Option{Env: "APMTEL_INDICES_METRIC", Group: "indices", Flag: "indices-metric", Help: "metric index patterns",
			set: str(func(c *Config) *string { return &c.Indices.Metric })},
		Option{Env: "APMTEL_INDICES_ONBOARDING", Group: "indices", Flag: "indices-onboarding", Help: "onboarding index patterns",
			set: str(func(c *Config) *string { return &c.Indices.Onboarding })},
		Option{Env: "APMTEL_INDICES_AGENT_CONFIGURATION", Group: "indices", Flag: "indices-agent-configuration", Help: "agent central-configuration index (default .apm-agent-configuration)",
			set: str(func(c *Config) *string { return &c.Indices.AgentConfiguration })},
		Option{Env: "APMTEL_INDICES_KIBANA", Group: "indices", Flag: "indices-kibana", Help: "Kibana saved-object index pattern (default .kibana*)",
			set: str(func(c *Config) *string { return &c.Indices.Kibana })},
		Option{Env: "APMTEL_INTERVAL", Group: "schedule", Flag: "interval", Help: "time between scheduled runs (default 12h)",
			set: duration(func(c *Config) *time.Duration { return &c.Interval })},
		Option{Env: "APMTEL_OPT_IN", Group: "telemetry", Flag: "opt-in", Help: "upload payloads; false collects only (default true)",
			set: boolean(func(c *Config) *bool { return &c.OptIn })},
		Option{Env: "APMTEL_TASK_TIMEOUT", Group: "run", Flag: "task-timeout", Help: "timeout of one telemetry task (default 5m)",
			set: duration(func(c *Config) *time.Duration { return &c.TaskTimeout })},
		Option{Env: "APMTEL_SEARCH_TIMEOUT", Group: "source", Flag: "search-timeout", Help: "timeout of one request to the source cluster, also the search body timeout (default 5m)",
			set: duration(func(c *Config) *time.Duration { return &c.SearchTimeout })},
		Option{Env: "APMTEL_RUN_DEADLINE", Group: "run", Flag: "run-deadline", Help: "a run is finalized this long after it starts, finished or not (default 30m)",
			set: duration(func(c *Config) *time.Duration { return &c.RunDeadline })},
		Option{Env: "APMTEL_MAX_RETRY", Group: "run", Flag: "max-retry", Help: "retries of a failed task or upload (default 3)",
			set: integer(func(c *Config) *int { return &c.MaxRetry })},
		Option{Env: "APMTEL_CONCURRENCY", Group: "worker", Flag: "concurrency", Help: "jobs one worker runs at once (default 4)",
			set: integer(func(c *Config) *int { return &c.Concurrency })},
		Option{Env: "APMTEL_SEARCH_CONCURRENCY", Group: "source", Flag: "search-concurrency", Help: "requests all workers together send to the source cluster at once; 0 = no cap (default 4)",
			set: integer(func(c *Config) *int { return &c.SearchConcurrency })},
		Option{Env: "APMTEL_POLL_INTERVAL", Group: "worker", Flag: "poll-interval", Help: "how often an idle worker polls the queues (default 200ms)",
			set: duration(func(c *Config) *time.Duration { return &c.PollInterval })},
		Option{Env: "APMTEL_ORPHAN_MIN_AGE", Group: "worker", Flag: "orphan-min-age", Help: "a worker removes an entry of asynq's active list that has had no task hash and no lease this long (default 5m; keep it well above asynq's 30s lease and 1m recoverer)",
			set: duration(func(c *Config) *time.Duration { return &c.OrphanMinAge })},
		Option{Env: "APMTEL_UPLOAD_RETRY_WINDOW", Group: "run", Flag: "upload-retry-window", Help: "how long a failing upload is retried before it is marked failed (default 72h)",
			set: duration(func(c *Config) *time.Duration { return &c.UploadRetryWindow })},
		Option{Env: "APMTEL_CATCHUP_GRACE", Group: "schedule", Flag: "catchup-grace", Help: "no catch-up run at scheduler start when the next slot starts within this (default 10m); at most a quarter of APMTEL_INTERVAL is used, since a grace as long as the interval would skip every catch-up",
			set: duration(func(c *Config) *time.Duration { return &c.CatchupGrace })},
		Option{Env: "APMTEL_HISTORY_LIMIT", Group: "run", Flag: "history-limit", Help: "runs kept in Redis (default 50)",
			set: integer(func(c *Config) *int { return &c.HistoryLimit })},
		Option{Env: "APMTEL_HISTORY_TTL", Group: "run", Flag: "history-ttl", Help: "how long a run is kept in Redis (default 168h)",
			set: duration(func(c *Config) *time.Duration { return &c.HistoryTTL })},
		Option{Env: "APMTEL_DATA_DIR", Group: "telemetry", Flag: "data-dir", Help: "where payloads go without a telemetry cluster (default ./data)",
			set: str(func(c *Config) *string { return &c.DataDir })},
		Option{Env: "APMTEL_MONITOR_ADDR", Group: "monitor", Flag: "monitor-addr", Help: "address of the Asynqmon UI (default 127.0.0.1:8080)",
			set: str(func(c *Config) *string { return &c.MonitorAddr })},
		Option{Env: "APMTEL_MONITOR_TOKEN", Group: "monitor", Flag: "monitor-token", Help: "token required by the monitor (mandatory off loopback)", Secret: true,
			set: str(func(c *Config) *string { return &c.MonitorToken })},
		Option{Env: "APMTEL_MONITOR_READ_ONLY", Group: "monitor", Flag: "monitor-read-only", Help: "serve Asynqmon read-only; false allows same-origin changes (default true)",
			set: boolean(func(c *Config) *bool { return &c.MonitorReadOnly })},
		Option{Env: "APMTEL_METRICS_CLUSTER_LIMIT", Group: "monitor", Flag: "metrics-cluster-limit", Help: "clusters that get per-cluster series on the monitor's /metrics; the rest are counted in apmtel_cluster_metrics_overflow (default 1000, 0-100000)",
			set: integer(func(c *Config) *int { return &c.MetricsClusterLimit })},
		Option{Env: "APMTEL_HTTP_ADDR", Group: "http", Flag: "http-addr", Help: "where worker and scheduler serve /healthz, /readyz and /metrics; empty = off (off loopback needs APMTEL_MONITOR_TOKEN)",
			set: str(func(c *Config) *string { return &c.HTTPAddr })},
		Option{Env: "APMTEL_MONITOR_HOSTS", Group: "http", Flag: "monitor-hosts", Help: "further host names the HTTP endpoints answer to (comma-separated)",
			set: list(func(c *Config) *[]string { return &c.MonitorHosts })},
		Option{Env: "APMTEL_LOG_LEVEL", Group: "global", Flag: "log-level", Help: "trace, debug, info, warn or error (default info)",
			set: str(func(c *Config) *string { return &c.LogLevel })},
		Option{Env: "APMTEL_LOG_FORMAT", Group: "global", Flag: "log-format", Help: "console or json (default console)",
			set: str(func(c *Config) *string { return &c.LogFormat })},
	)
	return opts
}

// UsageError is a configuration error: the CLI prints it on one line and exits 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// ReadFile reads a *_FILE secret; a variable so tests can stand in for the
// file system.
var ReadFile = os.ReadFile

// FromEnv applies every APMTEL_* variable found by lookup onto c. A secret
// may instead be given as a file named by <VAR>_FILE (Docker and Kubernetes
// secrets), whose content, less a trailing newline, is the value.
func FromEnv(c *Config, lookup func(string) (string, bool)) error {
	var errs []error
	for _, o := range Options() {
		v, ok := lookup(o.Env)
		if o.Secret {
			if path, fok := lookup(o.Env + "_FILE"); fok && path != "" {
				if ok && v != "" {
					errs = append(errs, fmt.Errorf("%s and %s_FILE are both set: set one", o.Env, o.Env))
					continue
				}
				b, err := ReadFile(path)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s_FILE: cannot read %s: %w", o.Env, path, unwrapPathError(err)))
					continue
				}
				v, ok = strings.TrimRight(string(b), "\r\n"), true
			}
		}
		if ok {
			if err := o.set(c, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", o.Env, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return &UsageError{err}
	}
	return nil
}

// ErrSecretFlag is why a secret given as a flag is refused.
var ErrSecretFlag = errors.New("secrets are not accepted as flags (any user can read a process's command line)")

// RegisterFlags adds one flag per option to fs, writing into c when parsed.
// Flags are applied after the environment, so they win. A secret's flag
// exists only to refuse it with a message saying where the secret goes.
//
// groups limits the flags to the options of those groups and GroupGlobal;
// none registers every option.
func RegisterFlags(fs *flag.FlagSet, c *Config, groups ...string) {
	want := map[string]bool{GroupGlobal: true}
	for _, g := range groups {
		want[g] = true
	}
	for _, o := range Options() {
		o := o
		if o.Secret || len(groups) > 0 && !want[o.Group] {
			continue
		}
		fs.Var(&optionFlag{o: o, c: c}, o.Flag, o.Help+" ["+o.Env+"]")
	}
}

// GroupGlobal options (Redis, key space, logging) are read by every command.
const GroupGlobal = "global"

// Groups of options, for FlagGroups.
const (
	GroupSource    = "source"
	GroupIndices   = "indices"
	GroupTelemetry = "telemetry"
	GroupRun       = "run"
	GroupSchedule  = "schedule"
	GroupWorker    = "worker"
	GroupMonitor   = "monitor"
	GroupHTTP      = "http"
)

// GroupOf returns the group of the option with flag name, or "".
func GroupOf(flagName string) string {
	for _, o := range Options() {
		if o.Flag == flagName {
			return o.Group
		}
	}
	return ""
}

// KindOf names the value type of the option with flag name, for help:
// bool, duration, int or string (tried on a scratch Config).
func KindOf(flagName string) string {
	for _, o := range Options() {
		if o.Flag != flagName {
			continue
		}
		accepts := func(v string) bool { var c Config; return o.set(&c, v) == nil }
		switch {
		case accepts("true") && !accepts("maybe"):
			return "bool"
		case accepts("7s") && !accepts("7"):
			return "duration"
		case accepts("7") && !accepts("x"):
			return "int"
		}
		return "string"
	}
	return ""
}

// optionFlag is an option as a flag; booleans need no value (--redis-tls).
type optionFlag struct {
	o   Option
	c   *Config
	val string
}

func (f *optionFlag) String() string { return f.val }

func (f *optionFlag) Set(v string) error {
	if err := f.o.set(f.c, v); err != nil {
		return fmt.Errorf("%s: %w", f.o.Env, err)
	}
	f.val = v
	return nil
}

// IsBoolFlag: an option is boolean when it takes "true" and refuses
// anything that is not a boolean (tried on a scratch Config).
func (f *optionFlag) IsBoolFlag() bool {
	var scratch Config
	return f.o.set(&scratch, "true") == nil && f.o.set(&scratch, "maybe") != nil
}

// Load builds a Config: defaults, then the environment, then args parsed by fs
// (which must not have been parsed yet), then Validate.
// groups limits the flags as in RegisterFlags.
func Load(fs *flag.FlagSet, args []string, lookup func(string) (string, bool), groups ...string) (Config, error) {
	c := Default()
	if err := FromEnv(&c, lookup); err != nil {
		return c, err
	}
	RegisterFlags(fs, &c, groups...)
	if err := rejectSecretFlags(args); err != nil {
		return c, &UsageError{err}
	}
	if err := fs.Parse(Intersperse(fs, args)); err != nil {
		return c, &UsageError{err}
	}
	if err := c.Validate(); err != nil {
		return c, &UsageError{err}
	}
	return c, nil
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

// unwrapPathError drops the path an *fs.PathError repeats.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// rejectSecretFlags refuses a secret given as a flag before the flag package
// parses it, because the flag package's own error would echo the value.
func rejectSecretFlags(args []string) error {
	for _, a := range args {
		if a == "--" {
			return nil
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") {
			continue
		}
		for _, o := range Options() {
			if o.Secret && o.Flag == name {
				return fmt.Errorf("--%s: %w: set %s or %s_FILE instead", name, ErrSecretFlag, o.Env, o.Env)
			}
		}
	}
	return nil
}

// Intersperse moves positional arguments behind the flags, so that flags may
// follow them (`apmtel snapshot RUN --report`); the flag package alone stops
// at the first positional argument. A flag that takes a value keeps the
// argument after it; "--" ends the flags as usual.
func Intersperse(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := fs.Lookup(name)
		if hasValue || f == nil {
			continue
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	if len(pos) == 0 {
		return flags
	}
	return append(append(flags, "--"), pos...)
}
