package cli

import (
	"context"
	"encoding/json"
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
	"github.com/spf13/cobra"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/logs"
	"github.com/apmtel/apmtel/internal/redisconn"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/internal/uploader"
	"github.com/apmtel/apmtel/internal/version"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	usage   string
	// groups are the configuration groups the command reads: its flags are
	// those groups' options (plus the global ones); every option keeps its
	// APMTEL_* variable.
	groups []string
	run    func(e *env, args []string) error
}

// env is what a subcommand gets.
type env struct {
	stdout, stderr io.Writer
	lookup         func(string) (string, bool)
	// groups of the command being run (see command.groups).
	groups []string
	// collect, while completing, receives the command's flag set instead of
	// it being parsed (see parse).
	collect **flag.FlagSet
}

// exitError carries an exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

const (
	gSource    = config.GroupSource
	gIndices   = config.GroupIndices
	gTelemetry = config.GroupTelemetry
	gRun       = config.GroupRun
	gSchedule  = config.GroupSchedule
	gWorker    = config.GroupWorker
	gMonitor   = config.GroupMonitor
	gHTTP      = config.GroupHTTP
)

func commands() []command {
	all := []string{gSource, gIndices, gTelemetry, gRun, gSchedule, gWorker, gMonitor, gHTTP}
	return []command{
		{"scheduler", "enqueue a telemetry run every APMTEL_INTERVAL (and at start when stale)", "", []string{gRun, gSchedule, gIndices, gHTTP}, runScheduler},
		{"worker", "process telemetry jobs (collect, finalize, upload)", "", []string{gSource, gIndices, gTelemetry, gRun, gWorker, gHTTP}, runWorker},
		{"run", "start a run now; --wait follows it to its upload", "[TASK ...] [--no-upload] [--force] [--wait [--timeout D] [--json]]", []string{gRun, gIndices}, runRun},
		{"runs", "list recent runs: kind, status, duration, failed tasks, upload", "[--limit N] [--pending-upload] [--json]", []string{gRun}, runRuns},
		{"cancel", "cancel an open run: stop its in-flight searches, drop its queued jobs, no upload", "RUN", []string{gRun}, runCancel},
		{"upload", "send a sealed full run's payload (again): after its upload failed, or to repeat it", "RUN", []string{gRun}, runUpload},
		{"snapshot", "print a stored telemetry object (latest by default), or a run's record", "[RUN] [--report [--json]]", []string{gRun}, runSnapshot},
		{"preview", "run tasks in-process against the source cluster and print the telemetry object", "[TASK ...] [--parallel N] [--envelope]", []string{gSource, gIndices, gTelemetry, gRun, gSchedule}, runPreview},
		{"monitor", "serve Asynqmon (queue inspection UI), health and metrics", "", []string{gMonitor, gRun}, runMonitor},
		{"standalone", "scheduler, workers and monitor in one process (embedded Redis when none is configured)", "[--workers N]", all, runStandalone},
		{"tasks", "list the registered telemetry tasks in execution order", "[--json]", nil, runTasks},
		{"schema", "the payload schema: mapping, check [--fix], es-mapping, paths", "mapping|check|es-mapping|paths", nil, runSchema},
		{"telemetry-index", "create or update the telemetry index with the schema's mapping", "setup [--clear] [--dynamic D]", []string{gTelemetry, gSource}, runTelemetryIndex},
		{"sample", "sample data: `sample apm` (APM data, source cluster), `sample telemetry` (payloads, telemetry cluster)", "apm|telemetry [flags]", []string{gSource, gIndices, gTelemetry, gRun}, runSample},
		{"healthcheck", "exit 0 when a health endpoint answers 2xx (for container healthchecks)", "[--url URL]", nil, runHealthcheck},
		{"version", "print version, commit, build date and Go version", "[--json]", nil, runVersion},
	}
}

// Main runs the apmtel command and returns its exit status: 0 done, 1 a
// failure (a task, an upload, a refused transition), 2 a usage error.
//
// cobra is the dispatcher: command tree, `help CMD`, shell completion and
// command suggestions. Each command parses its own flags (flags anywhere,
// only the groups it reads, one-line errors with a suggestion), because the
// configuration is one table of options shared with the environment.
func Main(args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	e := &env{stdout: stdout, stderr: stderr, lookup: lookup}
	root := &cobra.Command{
		Use:   "apmtel",
		Short: "apmtel collects Elastic APM data telemetry with distributed job-queue workers",
		Long: "apmtel collects Elastic APM data telemetry with distributed job-queue workers.\n\n" +
			"Every flag has an APMTEL_* environment variable (README.md, Configuration); secrets are\n" +
			"read only from the environment or from files named by APMTEL_*_FILE, never from flags.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Get().String(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	var current string
	for _, c := range commands() {
		c := c
		sub := &cobra.Command{
			Use:                c.name + " " + c.usage,
			Short:              c.summary,
			DisableFlagParsing: true,
			SilenceUsage:       true,
			SilenceErrors:      true,
			RunE: func(_ *cobra.Command, args []string) error {
				current, e.groups = c.name, c.groups
				return c.run(e, args)
			},
		}
		sub.ValidArgsFunction = func(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			return complete(c, args, toComplete)
		}
		root.AddCommand(sub)
	}
	// `apmtel help CMD` shows the command's own flag help.
	defaultHelp := root.HelpFunc()
	root.SetHelpFunc(func(cmd *cobra.Command, args []string) {
		if cmd != root && cmd.RunE != nil {
			_ = cmd.RunE(cmd, []string{"--help"})
			return
		}
		defaultHelp(cmd, args)
	})
	if len(args) == 0 {
		_ = root.Help()
		return 2
	}
	err := root.Execute()
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	name := "apmtel"
	if current != "" {
		name += " " + current
	}
	var ue *config.UsageError
	var ee *exitError
	switch {
	case current == "" && strings.HasPrefix(err.Error(), "unknown command"):
		msg := fmt.Sprintf("apmtel: unknown command %q", args[0])
		if s := root.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf(" (did you mean %q?)", s[0])
		}
		fmt.Fprintln(stderr, msg+"; see apmtel --help")
		return 2
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%s: %s\n", name, oneLine(ue.Err))
		return 2
	case errors.As(err, &ee):
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintf(stderr, "%s: %s\n", name, oneLine(ee.err))
		}
		return ee.code
	case current == "":
		fmt.Fprintf(stderr, "apmtel: %s\n", oneLine(err))
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %s\n", name, oneLine(err))
		return 1
	}
}

// helpRequested answers -h, --help and help as the first argument of a
// command with subcommands: print usage, exit 0.
func helpRequested(e *env, args []string, usage string) bool {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(e.stdout, "Usage: "+usage)
		return true
	}
	return false
}

func oneLine(err error) string { return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ") }

// load parses the configuration and the command's own flags: defaults, the
// environment, then the flags (anywhere among the arguments), then Validate.
func load(e *env, name, usageLine string, args []string, own func(fs *flag.FlagSet)) (config.Config, *flag.FlagSet, error) {
	fs := flag.NewFlagSet("apmtel "+name, flag.ContinueOnError)
	// The flag package's own error output (message plus every flag) is
	// replaced by one line with a suggestion; help is printed on request.
	fs.SetOutput(io.Discard)
	if own != nil {
		own(fs)
	}
	if e.collect != nil {
		var scratch config.Config
		config.RegisterFlags(fs, &scratch, groupsOrNone(e.groups)...)
		return scratch, fs, e.parse(fs, args)
	}
	cfg, err := config.Load(fs, args, e.lookup, groupsOrNone(e.groups)...)
	if err != nil {
		var ue *config.UsageError
		if errors.As(err, &ue) && errors.Is(ue.Err, flag.ErrHelp) {
			printUsage(e.stdout, name, usageLine, fs)
			return cfg, fs, flag.ErrHelp
		}
		if errors.As(err, &ue) {
			return cfg, fs, &config.UsageError{Err: suggest(ue.Err, fs)}
		}
		return cfg, fs, err
	}
	if _, err := redisconn.TLS(cfg); err != nil {
		return cfg, fs, err
	}
	return cfg, fs, nil
}

// groupsOrNone keeps a command without configuration groups from getting
// every option: it gets the global ones only.
func groupsOrNone(g []string) []string {
	if len(g) == 0 {
		return []string{config.GroupGlobal}
	}
	return g
}

// printUsage lists the command's flags, then the global ones once.
func printUsage(w io.Writer, name, usageLine string, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: apmtel %s %s\n", name, usageLine)
	var own, global []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if config.GroupOf(f.Name) == config.GroupGlobal {
			global = append(global, f)
		} else {
			own = append(own, f)
		}
	})
	section := func(title string, flags []*flag.Flag) {
		if len(flags) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s:\n", title)
		for _, f := range flags {
			kind, help := flag.UnquoteUsage(f)
			if k := config.KindOf(f.Name); k != "" {
				kind = k
			}
			if kind == "value" {
				kind = "string"
			}
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() || kind == "bool" {
				kind = ""
			}
			fmt.Fprintf(w, "  --%s %s\n      %s\n", f.Name, kind, help)
		}
	}
	section("Flags", own)
	section("Global flags", global)
	fmt.Fprintln(w, "\nEvery flag has an APMTEL_* environment variable; secrets come from the environment or APMTEL_*_FILE only.")
}

// suggest turns "flag provided but not defined: -wiat" into one line with
// the closest flag.
func suggest(err error, fs *flag.FlagSet) error {
	const undefined = "flag provided but not defined: -"
	msg := err.Error()
	if !strings.HasPrefix(msg, undefined) {
		return err
	}
	bad := strings.TrimLeft(strings.TrimPrefix(msg, undefined), "-")
	best, bestD := "", 3
	fs.VisitAll(func(f *flag.Flag) {
		if d := distance(bad, f.Name); d < bestD {
			best, bestD = f.Name, d
		}
	})
	if best == "" {
		return fmt.Errorf("unknown flag --%s (see --help)", bad)
	}
	return fmt.Errorf("unknown flag --%s (did you mean --%s?)", bad, best)
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
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
	return es.NewClient(es.ClientParams{Cluster: cfg.Source, Gate: gate, MaxBody: int64(cfg.SearchMaxAnswerMB) << 20})
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
	var asJSON bool
	if _, _, err := load(e, "tasks", "[--json]", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print JSON: the tasks in execution order with their position")
	}); err != nil {
		return err
	}
	names := telemetry.Default().Names()
	if asJSON {
		type task struct {
			Name  string `json:"name"`
			Order int    `json:"order"`
		}
		out := make([]task, len(names))
		for i, n := range names {
			out[i] = task{n, i + 1}
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	for _, n := range names {
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
