package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/logs"
	"github.com/apmtel/apmtel/internal/redisconn"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/internal/uploader"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	usage   string
	run     func(e *env, args []string) error
}

// env is what a subcommand gets.
type env struct {
	stdout, stderr io.Writer
	lookup         func(string) (string, bool)
}

// exitError carries an exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func commands() []command {
	return []command{
		{"scheduler", "enqueue a telemetry run every APMTEL_INTERVAL (and at start when stale)", "", runScheduler},
		{"worker", "process telemetry jobs (collect, finalize, upload)", "", runWorker},
		{"run", "start a run now; --wait shows progress and a summary", "[--task NAME ...] [--wait]", runRun},
		{"runs", "list recent runs and their status", "[--limit N]", runRuns},
		{"cancel", "cancel an open run: stop its in-flight searches, drop its queued jobs, no upload", "RUN", runCancel},
		{"upload", "send a sealed run's payload again (after its upload failed)", "RUN", runUpload},
		{"snapshot", "print a stored telemetry object (latest by default)", "[RUN] [--report]", runSnapshot},
		{"preview", "run tasks in-process against the source cluster and print the telemetry object", "[--task NAME ...]", runPreview},
		{"monitor", "serve Asynqmon (queue inspection UI)", "", runMonitor},
		{"standalone", "scheduler, workers and monitor in one process (embedded Redis when none is configured)", "[--workers N]", runStandalone},
		{"tasks", "list the registered telemetry tasks in execution order", "", runTasks},
		{"schema", "the payload schema: mapping, check [--fix], es-mapping, paths", "mapping|check|es-mapping|paths", runSchema},
		{"telemetry-index", "create or update the telemetry index with the schema's mapping", "setup [--clear]", runTelemetryIndex},
		{"sample", "sample data: `sample apm` (APM data, source cluster), `sample telemetry` (payloads, telemetry cluster)", "apm|telemetry [flags]", runSample},
		{"healthcheck", "exit 0 when a health endpoint answers 2xx (for container healthchecks)", "[--url URL]", runHealthcheck},
		{"version", "print version, commit, build date and Go version", "[--json]", runVersion},
	}
}

// Main runs the apmtel command and returns its exit status.
func Main(args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	e := &env{stdout: stdout, stderr: stderr, lookup: lookup}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(e, args[1:])
		if err == nil {
			return 0
		}
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var ue *config.UsageError
		var ee *exitError
		switch {
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "apmtel %s: configuration error: %s\n", c.name, oneLine(ue.Err))
			return 2
		case errors.As(err, &ee):
			if ee.err != nil && ee.err.Error() != "" {
				fmt.Fprintf(stderr, "apmtel %s: %s\n", c.name, ee.err)
			}
			return ee.code
		default:
			fmt.Fprintf(stderr, "apmtel %s: %s\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "apmtel: unknown command %q (see apmtel --help)\n", args[0])
	return 2
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

func usage(w io.Writer) {
	fmt.Fprintln(w, "apmtel collects Elastic APM data telemetry with distributed job-queue workers.")
	fmt.Fprintln(w, "\nUsage: apmtel <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nEvery command takes the configuration flags (see `apmtel <command> --help`);")
	fmt.Fprintln(w, "each flag has an APMTEL_* environment variable, documented in README.md.")
}

// load parses the configuration and the command's own flags.
func load(e *env, name, usageLine string, args []string, own func(fs *flag.FlagSet)) (config.Config, *flag.FlagSet, error) {
	fs := flag.NewFlagSet("apmtel "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: apmtel %s %s\n\nFlags:\n", name, usageLine)
		fs.PrintDefaults()
	}
	if own != nil {
		own(fs)
	}
	cfg, err := config.Load(fs, args, e.lookup)
	if err != nil {
		var ue *config.UsageError
		if errors.As(err, &ue) && errors.Is(ue.Err, flag.ErrHelp) {
			return cfg, fs, flag.ErrHelp
		}
		return cfg, fs, err
	}
	if _, err := redisconn.TLS(cfg); err != nil {
		return cfg, fs, err
	}
	return cfg, fs, nil
}

func newLogger(e *env, cfg config.Config) zerolog.Logger {
	l, err := logs.New(e.stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		l = zerolog.New(e.stderr)
	}
	return l
}

// runtime is a process's connections: one Redis client (redisconn), shared
// by asynq's client and inspector, the run store, the limiter and Asynqmon.
type runtime struct {
	rdb    redis.UniversalClient
	client *asynq.Client
	insp   *asynq.Inspector
}

// openRuntime connects to Redis and checks that it answers, so a command
// never starts work (or logs "started") against a Redis that is down.
func openRuntime(cfg config.Config, name string) (*runtime, error) {
	rt, err := newRuntime(cfg, name)
	if err != nil {
		return nil, err
	}
	if err := redisconn.Ping(context.Background(), rt.rdb, cfg); err != nil {
		rt.Close()
		return nil, err
	}
	return rt, nil
}

// newRuntime connects without checking, for a process that must start
// while Redis is down (the monitor, whose /readyz reports it).
func newRuntime(cfg config.Config, name string) (*runtime, error) {
	rdb, err := redisconn.New(cfg, fmt.Sprintf("apmtel-%s-%d", name, os.Getpid()))
	if err != nil {
		return nil, err
	}
	return &runtime{rdb: rdb, client: asynq.NewClientFromRedisClient(rdb), insp: asynq.NewInspectorFromRedisClient(rdb)}, nil
}

// Close closes the shared client (asynq's views of it own nothing).
func (r *runtime) Close() { _ = r.rdb.Close() }

// newRuns is the run store of the configured source cluster.
func newRuns(rdb redis.UniversalClient, cfg config.Config) *run.Store {
	return run.NewStore(rdb, keys.NewFor(cfg.KeyPrefix, cfg.SourceName), cfg.HistoryTTL, cfg.HistoryLimit)
}

// newSource returns the source client of an in-process collection (preview):
// APMTEL_SEARCH_CONCURRENCY caps this process's requests in flight, as the
// Redis semaphore caps all workers' together.
func newSource(cfg config.Config, l zerolog.Logger) (*es.Client, error) {
	return newGatedSource(cfg, l, es.LocalGate(cfg.SearchConcurrency))
}

// newGatedSource returns the source client; gate (nil: none) is taken around
// every attempt of every request.
func newGatedSource(cfg config.Config, l zerolog.Logger, gate es.Gate) (*es.Client, error) {
	if !cfg.Source.Configured() {
		return nil, &config.UsageError{Err: errors.New("APMTEL_SOURCE_URL: the source cluster is not configured")}
	}
	warnInsecure(l, "source", cfg.Source)
	return es.NewClient(es.ClientParams{Cluster: cfg.Source, Gate: gate})
}

func newSink(cfg config.Config, l zerolog.Logger) (uploader.Sink, error) {
	if cfg.TelemetryEndpoint != "" {
		return newChannelSink(cfg)
	}
	if !cfg.Telemetry.Configured() {
		return uploader.FileSink{Dir: filepath.Join(cfg.DataDir, "payloads")}, nil
	}
	warnInsecure(l, "telemetry", cfg.Telemetry)
	c, err := es.NewClient(es.ClientParams{Cluster: cfg.Telemetry})
	if err != nil {
		return nil, err
	}
	return uploader.ESSink{ES: c, Index: cfg.TelemetryIndex, Timeout: cfg.SearchTimeout}, nil
}

func warnInsecure(l zerolog.Logger, which string, c config.Cluster) {
	if c.Insecure {
		l.Warn().Str("cluster", which).Msg("TLS certificate verification is OFF for this cluster (APMTEL_*_INSECURE): anyone on the network path can read and change the traffic")
	}
}

// signalContext is cancelled on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runTasks(e *env, args []string) error {
	fs := flag.NewFlagSet("apmtel tasks", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	if err := fs.Parse(args); err != nil {
		return &config.UsageError{Err: err}
	}
	for _, n := range telemetry.Default().Names() {
		fmt.Fprintln(e.stdout, n)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
