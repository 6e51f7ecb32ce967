package config

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/apmtel/apmtel/internal/boundedfile"
)

// Kind is the value type of an option: it names the flag's type in help
// (pflag's Type) and decides how a value is parsed.
type Kind string

// The kinds of options.
const (
	KindString   Kind = "string"
	KindList     Kind = "strings"
	KindBool     Kind = "bool"
	KindInt      Kind = "int"
	KindDuration Kind = "duration"
)

// Option is one setting: its environment variable, its flag, its kind and
// where it lives in Config. Its default is read from Default(), never
// written twice.
type Option struct {
	Env  string
	Flag string
	Help string
	// Secret options are never printed with their value, and have no flag.
	Secret bool
	// Group says which commands read the option: a command offers flags,
	// reads variables and validates settings only for the groups it reads.
	Group string
	v     binding
}

// Kind is the option's value type.
func (o Option) Kind() Kind { return o.v.kind }

// Default is the option's value in Default(), as a flag or variable would
// spell it ("" when unset).
func (o Option) Default() string {
	c := Default()
	return o.v.get(&c)
}

// binding is how an option reads and writes its field of Config.
type binding struct {
	kind Kind
	set  func(c *Config, v string) error
	get  func(c *Config) string
}

func str(p func(*Config) *string) binding {
	return binding{KindString, func(c *Config, v string) error { *p(c) = v; return nil },
		func(c *Config) string { return *p(c) }}
}

func list(p func(*Config) *[]string) binding {
	return binding{KindList, func(c *Config, v string) error {
		var out []string
		for _, s := range strings.Split(v, ",") {
			// Empty items are kept, so Validate can refuse "http://h:1,,,".
			out = append(out, strings.TrimSpace(s))
		}
		if strings.TrimSpace(v) == "" {
			out = nil
		}
		*p(c) = out
		return nil
	}, func(c *Config) string { return strings.Join(*p(c), ",") }}
}

func boolean(p func(*Config) *bool) binding {
	return binding{KindBool, func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not a boolean (true/false)", v)
		}
		*p(c) = b
		return nil
	}, func(c *Config) string { return strconv.FormatBool(*p(c)) }}
}

func integer(p func(*Config) *int) binding {
	return binding{KindInt, func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		*p(c) = n
		return nil
	}, func(c *Config) string { return strconv.Itoa(*p(c)) }}
}

func duration(p func(*Config) *time.Duration) binding {
	return binding{KindDuration, func(c *Config, v string) error {
		d, err := ParseDuration(v)
		if err != nil {
			return err
		}
		*p(c) = d
		return nil
	}, func(c *Config) string { return FormatDuration(*p(c)) }}
}

// ParseDuration parses a duration with the error every duration setting
// and flag gives.
func ParseDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (like 30s, 5m, 12h)", v)
	}
	return d, nil
}

func clusterOptions(prefix, flagPrefix, group, what string, get func(*Config) *Cluster) []Option {
	return []Option{
		{Env: prefix + "_URL", Group: group, Flag: flagPrefix + "-url", Help: "comma-separated URLs of the " + what,
			v: list(func(c *Config) *[]string { return &get(c).URLs })},
		{Env: prefix + "_USERNAME", Group: group, Flag: flagPrefix + "-username", Help: "basic-auth user of the " + what,
			v: str(func(c *Config) *string { return &get(c).Username })},
		{Env: prefix + "_PASSWORD", Group: group, Flag: flagPrefix + "-password", Help: "basic-auth password of the " + what, Secret: true,
			v: str(func(c *Config) *string { return &get(c).Password })},
		{Env: prefix + "_API_KEY", Group: group, Flag: flagPrefix + "-api-key", Help: "API key (base64 id:key) of the " + what, Secret: true,
			v: str(func(c *Config) *string { return &get(c).APIKey })},
		{Env: prefix + "_CA_CERT", Group: group, Flag: flagPrefix + "-ca-cert", Help: "PEM CA file for the " + what,
			v: str(func(c *Config) *string { return &get(c).CACert })},
		{Env: prefix + "_INSECURE", Group: group, Flag: flagPrefix + "-insecure", Help: "skip TLS verification for the " + what + " (unsafe)",
			v: boolean(func(c *Config) *bool { return &get(c).Insecure })},
	}
}

// Options lists every setting, in the order docs/configuration.md documents them.
func Options() []Option {
	opts := []Option{
		{Env: "APMTEL_REDIS_ADDR", Group: GroupRedis, Flag: "redis-addr", Help: "Redis host:port; with APMTEL_REDIS_SENTINEL_MASTER or APMTEL_REDIS_CLUSTER, a comma-separated list",
			v: binding{KindString, func(c *Config, v string) error { c.RedisAddr = v; c.RedisAddrSet = true; return nil },
				func(c *Config) string { return c.RedisAddr }}},
		{Env: "APMTEL_REDIS_SENTINEL_MASTER", Group: GroupRedis, Flag: "redis-sentinel-master", Help: "master name: APMTEL_REDIS_ADDR lists Sentinels",
			v: str(func(c *Config) *string { return &c.RedisSentinelMaster })},
		{Env: "APMTEL_REDIS_SENTINEL_PASSWORD", Group: GroupRedis, Flag: "redis-sentinel-password", Help: "password of the Sentinels themselves", Secret: true,
			v: str(func(c *Config) *string { return &c.RedisSentinelPassword })},
		{Env: "APMTEL_REDIS_CLUSTER", Group: GroupRedis, Flag: "redis-cluster", Help: "APMTEL_REDIS_ADDR lists Redis Cluster nodes",
			v: boolean(func(c *Config) *bool { return &c.RedisCluster })},
		{Env: "APMTEL_REDIS_PASSWORD", Group: GroupRedis, Flag: "redis-password", Help: "Redis password", Secret: true,
			v: str(func(c *Config) *string { return &c.RedisPassword })},
		{Env: "APMTEL_REDIS_DB", Group: GroupRedis, Flag: "redis-db", Help: "Redis database number",
			v: integer(func(c *Config) *int { return &c.RedisDB })},
		{Env: "APMTEL_REDIS_TLS", Group: GroupRedis, Flag: "redis-tls", Help: "connect to Redis over TLS",
			v: boolean(func(c *Config) *bool { return &c.RedisTLS })},
		{Env: "APMTEL_REDIS_CA_CERT", Group: GroupRedis, Flag: "redis-ca-cert", Help: "PEM CA file for Redis TLS (implies APMTEL_REDIS_TLS)",
			v: str(func(c *Config) *string { return &c.RedisCACert })},
		{Env: "APMTEL_KEY_PREFIX", Group: GroupRedis, Flag: "key-prefix", Help: "prefix of apmtel's Redis keys",
			v: str(func(c *Config) *string { return &c.KeyPrefix })},
	}
	opts = append(opts, clusterOptions("APMTEL_SOURCE", "source", GroupSource, "source cluster (APM data)", func(c *Config) *Cluster { return &c.Source })...)
	opts = append(opts, clusterOptions("APMTEL_TELEMETRY", "telemetry", GroupTelemetry, "telemetry cluster (upload target)", func(c *Config) *Cluster { return &c.Telemetry })...)
	opts = append(opts,
		Option{Env: "APMTEL_SOURCE_NAME", Group: GroupRedis, Flag: "source-name", Help: "short name of the source cluster; scopes run keys and job ids",
			v: str(func(c *Config) *string { return &c.SourceName })},
		Option{Env: "APMTEL_TELEMETRY_INDEX", Group: GroupTelemetry, Flag: "telemetry-index", Help: "index receiving the payload",
			v: str(func(c *Config) *string { return &c.TelemetryIndex })},
		Option{Env: "APMTEL_TELEMETRY_ENDPOINT", Group: GroupTelemetry, Flag: "telemetry-endpoint", Help: "Elastic telemetry service base URL; the payload goes to {endpoint}/v3/send/kibana-snapshot, JWE-encrypted",
			v: str(func(c *Config) *string { return &c.TelemetryEndpoint })},
		Option{Env: "APMTEL_TELEMETRY_JWKS", Group: GroupTelemetry, Flag: "telemetry-jwks", Help: "JSON file with the telemetry service's public JWK set (RSA-OAEP)",
			v: str(func(c *Config) *string { return &c.TelemetryJWKS })},
		Option{Env: "APMTEL_KIBANA_VERSION", Group: GroupSource, Flag: "kibana-version", Help: "Kibana version the envelope reports when the saved objects do not tell it",
			v: str(func(c *Config) *string { return &c.KibanaVersion })},
		Option{Env: "APMTEL_INDICES_TRANSACTION", Group: GroupIndices, Flag: "indices-transaction", Help: "transaction index patterns",
			v: str(func(c *Config) *string { return &c.Indices.Transaction })},
		Option{Env: "APMTEL_INDICES_SPAN", Group: GroupIndices, Flag: "indices-span", Help: "span index patterns",
			v: str(func(c *Config) *string { return &c.Indices.Span })},
		Option{Env: "APMTEL_INDICES_ERROR", Group: GroupIndices, Flag: "indices-error", Help: "error index patterns",
			v: str(func(c *Config) *string { return &c.Indices.Error })},
		Option{Env: "APMTEL_INDICES_METRIC", Group: GroupIndices, Flag: "indices-metric", Help: "metric index patterns",
			v: str(func(c *Config) *string { return &c.Indices.Metric })},
		Option{Env: "APMTEL_INDICES_ONBOARDING", Group: GroupIndices, Flag: "indices-onboarding", Help: "onboarding index patterns",
			v: str(func(c *Config) *string { return &c.Indices.Onboarding })},
		Option{Env: "APMTEL_INDICES_AGENT_CONFIGURATION", Group: GroupIndices, Flag: "indices-agent-configuration", Help: "agent central-configuration index",
			v: str(func(c *Config) *string { return &c.Indices.AgentConfiguration })},
		Option{Env: "APMTEL_INDICES_KIBANA", Group: GroupIndices, Flag: "indices-kibana", Help: "Kibana saved-object index pattern",
			v: str(func(c *Config) *string { return &c.Indices.Kibana })},
		Option{Env: "APMTEL_INTERVAL", Group: GroupSchedule, Flag: "interval", Help: "time between scheduled runs",
			v: duration(func(c *Config) *time.Duration { return &c.Interval })},
		Option{Env: "APMTEL_OPT_IN", Group: GroupTelemetry, Flag: "opt-in", Help: "upload payloads; false collects only",
			v: boolean(func(c *Config) *bool { return &c.OptIn })},
		Option{Env: "APMTEL_TASK_TIMEOUT", Group: GroupTask, Flag: "task-timeout", Help: "timeout of one telemetry task",
			v: duration(func(c *Config) *time.Duration { return &c.TaskTimeout })},
		Option{Env: "APMTEL_SEARCH_TIMEOUT", Group: GroupSource, Flag: "search-timeout", Help: "timeout of one request to the source cluster, also the search body timeout",
			v: duration(func(c *Config) *time.Duration { return &c.SearchTimeout })},
		Option{Env: "APMTEL_RUN_DEADLINE", Group: GroupRun, Flag: "run-deadline", Help: "a run is finalized this long after it starts, finished or not",
			v: duration(func(c *Config) *time.Duration { return &c.RunDeadline })},
		Option{Env: "APMTEL_MAX_RETRY", Group: GroupRun, Flag: "max-retry", Help: "retries of a failed task (uploads are retried for APMTEL_UPLOAD_RETRY_WINDOW)",
			v: integer(func(c *Config) *int { return &c.MaxRetry })},
		Option{Env: "APMTEL_CONCURRENCY", Group: GroupWorker, Flag: "concurrency", Help: "jobs one worker runs at once",
			v: integer(func(c *Config) *int { return &c.Concurrency })},
		Option{Env: "APMTEL_SEARCH_MAX_ANSWER_MB", Group: GroupSource, Flag: "search-max-answer-mb", Help: "largest answer of the source cluster accepted, in MiB; a larger one fails the task",
			v: integer(func(c *Config) *int { return &c.SearchMaxAnswerMB })},
		Option{Env: "APMTEL_SEARCH_CONCURRENCY", Group: GroupSource, Flag: "search-concurrency", Help: "requests all workers together send to the source cluster at once; 0 = no cap",
			v: integer(func(c *Config) *int { return &c.SearchConcurrency })},
		Option{Env: "APMTEL_POLL_INTERVAL", Group: GroupWorker, Flag: "poll-interval", Help: "how often an idle worker polls the queues",
			v: duration(func(c *Config) *time.Duration { return &c.PollInterval })},
		Option{Env: "APMTEL_ORPHAN_MIN_AGE", Group: GroupWorker, Flag: "orphan-min-age", Help: "a worker removes an entry of asynq's active list that has had no task hash and no lease this long",
			v: duration(func(c *Config) *time.Duration { return &c.OrphanMinAge })},
		Option{Env: "APMTEL_UPLOAD_RETRY_WINDOW", Group: GroupRun, Flag: "upload-retry-window", Help: "how long a failing upload is retried before it is marked failed",
			v: duration(func(c *Config) *time.Duration { return &c.UploadRetryWindow })},
		Option{Env: "APMTEL_CATCHUP_GRACE", Group: GroupCatchup, Flag: "catchup-grace", Help: "no catch-up run when the next slot starts within this (checked at scheduler start and every grace after); at most a quarter of APMTEL_INTERVAL is used, since a grace as long as the interval would skip every catch-up",
			v: duration(func(c *Config) *time.Duration { return &c.CatchupGrace })},
		Option{Env: "APMTEL_HISTORY_LIMIT", Group: GroupHistory, Flag: "history-limit", Help: "runs kept in Redis",
			v: integer(func(c *Config) *int { return &c.HistoryLimit })},
		Option{Env: "APMTEL_HISTORY_TTL", Group: GroupHistory, Flag: "history-ttl", Help: "how long a run is kept in Redis",
			v: duration(func(c *Config) *time.Duration { return &c.HistoryTTL })},
		Option{Env: "APMTEL_DATA_DIR", Group: GroupTelemetry, Flag: "data-dir", Help: "where payloads go without a telemetry cluster",
			v: str(func(c *Config) *string { return &c.DataDir })},
		Option{Env: "APMTEL_MONITOR_ADDR", Group: GroupMonitor, Flag: "monitor-addr", Help: "address of the Asynqmon UI",
			v: str(func(c *Config) *string { return &c.MonitorAddr })},
		Option{Env: "APMTEL_MONITOR_TOKEN", Group: GroupAccess, Flag: "monitor-token", Help: "token required by the monitor (mandatory off loopback)", Secret: true,
			v: str(func(c *Config) *string { return &c.MonitorToken })},
		Option{Env: "APMTEL_MONITOR_READ_ONLY", Group: GroupMonitor, Flag: "monitor-read-only", Help: "serve Asynqmon read-only; false allows same-origin changes",
			v: boolean(func(c *Config) *bool { return &c.MonitorReadOnly })},
		Option{Env: "APMTEL_METRICS_CLUSTER_LIMIT", Group: GroupMonitor, Flag: "metrics-cluster-limit", Help: "clusters that get per-cluster series on the monitor's /metrics; the rest are counted in apmtel_cluster_metrics_overflow",
			v: integer(func(c *Config) *int { return &c.MetricsClusterLimit })},
		Option{Env: "APMTEL_HTTP_ADDR", Group: GroupHTTP, Flag: "http-addr", Help: "where worker and scheduler serve /healthz, /readyz and /metrics; empty = off (off loopback needs APMTEL_MONITOR_TOKEN)",
			v: str(func(c *Config) *string { return &c.HTTPAddr })},
		Option{Env: "APMTEL_MONITOR_HOSTS", Group: GroupAccess, Flag: "monitor-hosts", Help: "further host names the HTTP endpoints answer to (comma-separated)",
			v: list(func(c *Config) *[]string { return &c.MonitorHosts })},
		Option{Env: "APMTEL_CLUSTERS_FILE", Group: GroupFleet, Flag: "clusters-file", Help: "YAML file listing the source clusters; unset: the one cluster of APMTEL_SOURCE_*",
			v: str(func(c *Config) *string { return &c.ClustersFile })},
		Option{Env: "APMTEL_FLEET_SPREAD", Group: GroupFleet, Flag: "fleet-spread", Help: "the clusters' starts are spread over this part of each slot; unset: a quarter of APMTEL_INTERVAL; 0 = all at the slot start",
			v: binding{KindDuration, func(c *Config, v string) error {
				d, err := ParseDuration(v)
				if err != nil {
					return err
				}
				c.FleetSpread, c.FleetSpreadSet = d, true
				return nil
			}, func(c *Config) string {
				if !c.FleetSpreadSet {
					return ""
				}
				return FormatDuration(c.FleetSpread)
			}}},
		Option{Env: "APMTEL_FLEET_CONCURRENCY", Group: GroupFleet, Flag: "fleet-concurrency", Help: "requests all workers together send to all clusters at once, with each cluster's own cap; 0 = no fleet-wide cap",
			v: integer(func(c *Config) *int { return &c.FleetConcurrency })},
		Option{Env: "APMTEL_FLEET_BACKOFF_AFTER", Group: GroupFleet, Flag: "fleet-backoff-after", Help: "consecutive failed runs after which a cluster's scheduled runs back off",
			v: integer(func(c *Config) *int { return &c.FleetBackoffAfter })},
		Option{Env: "APMTEL_LOG_LEVEL", Group: GroupLogging, Flag: "log-level", Help: "trace, debug, info, warn or error",
			v: str(func(c *Config) *string { return &c.LogLevel })},
		Option{Env: "APMTEL_LOG_FORMAT", Group: GroupLogging, Flag: "log-format", Help: "console or json",
			v: str(func(c *Config) *string { return &c.LogFormat })},
	)
	return opts
}

// Groups of options: which commands read them. Every command that reads
// configuration reads GroupLogging.
const (
	GroupRedis     = "redis"     // Redis connection and key space (APMTEL_REDIS_*, key prefix, source name)
	GroupLogging   = "logging"   // log level and format
	GroupSource    = "source"    // the source cluster and how hard to query it
	GroupIndices   = "indices"   // the source's APM index patterns
	GroupTelemetry = "telemetry" // the upload target
	GroupTask      = "task"      // one task's timeout
	GroupRun       = "run"       // a run's deadline, task retries and upload retries
	GroupHistory   = "history"   // how many runs Redis keeps, and how long
	GroupSchedule  = "schedule"  // the interval of scheduled runs
	GroupCatchup   = "catchup"   // the scheduler's catch-up grace
	GroupWorker    = "worker"    // one worker's job concurrency and polling
	GroupMonitor   = "monitor"   // the monitor's address and mode
	GroupAccess    = "access"    // the HTTP endpoints' token and host names
	GroupHTTP      = "http"      // the worker's and scheduler's health/metrics address
	GroupFleet     = "fleet"     // the clusters file, spread, fleet-wide cap and backoff
)

// UsageError is a configuration error: the CLI prints it on one line and exits 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// ReadFile reads a *_FILE secret (size-limited: internal/boundedfile); a
// variable so tests can stand in for the file system.
var ReadFile = boundedfile.Read

// FromEnv applies the APMTEL_* variables found by lookup onto c, for the
// options read says are read (nil: all). A secret may instead be given as a
// file named by <VAR>_FILE (Docker and Kubernetes secrets), whose content,
// less a trailing newline, is the value.
func FromEnv(c *Config, lookup func(string) (string, bool), read func(Option) bool) error {
	var errs []error
	for _, o := range Options() {
		if read != nil && !read(o) {
			continue
		}
		v, ok := lookup(o.Env)
		if o.Secret {
			if path, fok := lookup(o.Env + "_FILE"); fok && path != "" {
				if ok && v != "" {
					errs = append(errs, &SettingError{o.Env, fmt.Errorf("it and %s_FILE are both set: set one", o.Env)})
					continue
				}
				b, err := ReadFile(path)
				if err != nil {
					errs = append(errs, &SettingError{o.Env + "_FILE", fmt.Errorf("cannot read %s: %w", path, unwrapPathError(err))})
					continue
				}
				v, ok = strings.TrimRight(string(b), "\r\n"), true
			}
		}
		if ok {
			if err := o.v.set(c, v); err != nil {
				errs = append(errs, &SettingError{o.Env, err})
			}
			c.noteSource(o, v)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return &UsageError{err}
	}
	return nil
}

// ErrSecretFlag is why a secret given as a flag is refused.
var ErrSecretFlag = errors.New("secrets are not accepted as flags (any user can read a process's command line)")

// SecretFlag returns the error for the secret whose flag would be name
// (--redis-password), or nil when name is no secret's. Secrets have no
// flag; the error says where the secret goes instead.
func SecretFlag(name string) error {
	for _, o := range Options() {
		if o.Secret && o.Flag == name {
			return fmt.Errorf("--%s: %w: set %s or %s_FILE instead", name, ErrSecretFlag, o.Env, o.Env)
		}
	}
	return nil
}

// Reads returns whether a command reading groups reads option o; no
// groups reads every option.
func Reads(groups []string, o Option) bool {
	if len(groups) == 0 {
		return true
	}
	for _, g := range groups {
		if g == o.Group {
			return true
		}
	}
	return false
}

// AddFlags adds a typed flag for every option of groups (no groups: every
// option) to fs, secrets aside. Flags are applied by Load after the
// environment, so they win.
func AddFlags(fs *pflag.FlagSet, groups ...string) {
	for _, o := range Options() {
		if o.Secret || !Reads(groups, o) {
			continue
		}
		var v pflag.Value = &optionFlag{o: o, raw: o.Default()}
		if o.Kind() == KindBool {
			v = &boolOptionFlag{optionFlag{o: o, raw: o.Default()}}
		}
		fs.Var(v, o.Flag, o.Help+" ["+o.Env+"]")
		if o.Kind() == KindBool {
			fs.Lookup(o.Flag).NoOptDefVal = "true"
		}
	}
}

// OptionOf returns the option behind flag f, if it is one.
func OptionOf(f *pflag.Flag) (Option, bool) {
	switch v := f.Value.(type) {
	case *optionFlag:
		return v.o, true
	case *boolOptionFlag:
		return v.o, true
	}
	return Option{}, false
}

// optionFlag is an option as a pflag value: Set checks the value at once
// (so a bad one is a flag error), Load applies it.
type optionFlag struct {
	o   Option
	raw string
	set bool
}

func (f *optionFlag) String() string { return f.raw }
func (f *optionFlag) Type() string   { return string(f.o.Kind()) }

func (f *optionFlag) Set(v string) error {
	var scratch Config
	if err := f.o.v.set(&scratch, v); err != nil {
		return err
	}
	// A list flag may be repeated: --source-url a --source-url b.
	if f.set && f.o.Kind() == KindList {
		v = f.raw + "," + v
	}
	f.raw, f.set = v, true
	return nil
}

// boolOptionFlag is a boolean option: --redis-tls alone means true.
type boolOptionFlag struct{ optionFlag }

func (f *boolOptionFlag) IsBoolFlag() bool { return true }

// Load builds the Config of a command reading groups (none: all): defaults,
// then the environment, then the option flags set in fs (parsed already),
// then Validate. Settings the command does not read are neither parsed nor
// checked: a worker's tuning in the environment never stops `apmtel run`.
func Load(fs *pflag.FlagSet, lookup func(string) (string, bool), groups ...string) (Config, error) {
	c := Default()
	read := func(o Option) bool { return Reads(groups, o) }
	if err := FromEnv(&c, lookup, read); err != nil {
		return c, err
	}
	if fs != nil {
		var errs []error
		fs.Visit(func(f *pflag.Flag) {
			switch v := f.Value.(type) {
			case *optionFlag:
				errs = append(errs, v.o.v.set(&c, v.raw))
				c.noteSource(v.o, v.raw)
			case *boolOptionFlag:
				errs = append(errs, v.o.v.set(&c, v.raw))
				c.noteSource(v.o, v.raw)
			}
		})
		if err := errors.Join(errs...); err != nil {
			return c, &UsageError{err}
		}
	}
	if err := onlyRead(c.Validate(), groups); err != nil {
		return c, &UsageError{err}
	}
	return c, nil
}

// onlyRead keeps the problems of the settings a command reading groups reads.
func onlyRead(err error, groups []string) error {
	if err == nil || len(groups) == 0 {
		return err
	}
	byEnv := map[string]Option{}
	for _, o := range Options() {
		byEnv[o.Env] = o
	}
	var keep []error
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var se *SettingError
		if errors.As(err, &se) {
			if o, ok := byEnv[se.Env]; ok && !Reads(groups, o) {
				return
			}
		}
		keep = append(keep, err)
	}
	walk(err)
	return errors.Join(keep...)
}

// unwrapPathError drops the path an *fs.PathError repeats.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
