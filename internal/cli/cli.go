package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/agnivade/levenshtein"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/apmtel/apmtel/internal/collect"
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
	// usage is what follows the name in the usage line (positional words).
	usage string
	// groups are the configuration groups the command reads: their
	// variables, their flags (after the command's own) and their checks.
	// None: the command reads no configuration.
	groups []string
	// envOnly names options of those groups the command reads from the
	// environment only, because a flag would not change what it does
	// (run's --task-timeout: the workers' own APMTEL_TASK_TIMEOUT bounds a task).
	envOnly []string
	// flags declares the command's own flags, the most used first.
	flags func(fs *pflag.FlagSet)
	// args checks the positional arguments; nil allows none.
	args cobra.PositionalArgs
	// complete completes positional arguments; nil completes nothing.
	complete cobra.CompletionFunc
	run      func(e *env, args []string) error
	// subs are the command's subcommands (sample apm, schema check).
	subs []command
}

// env is what a subcommand gets.
type env struct {
	stdout, stderr io.Writer
	lookup         func(string) (string, bool)
	// cfg is the configuration of the groups the command reads.
	cfg config.Config
	// flags are the command's parsed flags (Changed tells what was given).
	flags *pflag.FlagSet
}

// exitError carries an exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

// usageErrorf is a usage error: one line, exit 2.
func usageErrorf(format string, a ...any) error {
	return &config.UsageError{Err: fmt.Errorf(format, a...)}
}

const (
	gRedis     = config.GroupRedis
	gLogging   = config.GroupLogging
	gSource    = config.GroupSource
	gIndices   = config.GroupIndices
	gTelemetry = config.GroupTelemetry
	gTask      = config.GroupTask
	gRun       = config.GroupRun
	gHistory   = config.GroupHistory
	gSchedule  = config.GroupSchedule
	gCatchup   = config.GroupCatchup
	gWorker    = config.GroupWorker
	gMonitor   = config.GroupMonitor
	gAccess    = config.GroupAccess
	gHTTP      = config.GroupHTTP
	gFleet     = config.GroupFleet
)

// globalGroups are the settings most commands read; help lists them last.
var globalGroups = []string{gRedis, gLogging}

func commands() []command {
	all := []string{gRedis, gLogging, gSource, gIndices, gTelemetry, gTask, gRun, gHistory, gSchedule, gCatchup, gWorker, gMonitor, gAccess, gHTTP, gFleet}
	// A command on stored runs reads the clusters file for --cluster.
	store := []string{gRedis, gLogging, gHistory, gFleet}
	return []command{
		{name: "scheduler", summary: "enqueue a telemetry run every APMTEL_INTERVAL (and at start when stale)",
			groups: []string{gRedis, gLogging, gSchedule, gCatchup, gTask, gRun, gHistory, gIndices, gHTTP, gAccess, gFleet}, envOnly: []string{"task-timeout"}, run: runScheduler},
		{name: "worker", summary: "process telemetry jobs (collect, finalize, upload)",
			groups: []string{gRedis, gLogging, gSource, gIndices, gTelemetry, gTask, gRun, gHistory, gWorker, gHTTP, gAccess, gFleet, gSchedule}, run: runWorker},
		runCommand(store),
		runsCommand(store),
		cancelCommand(store),
		uploadCommand(store),
		clustersCommand(),
		snapshotCommand(store),
		previewCommand(),
		{name: "monitor", summary: "serve Asynqmon (queue inspection UI), the console, health and metrics",
			groups: []string{gRedis, gLogging, gMonitor, gAccess, gHistory, gTelemetry, gSource, gSchedule, gFleet}, run: runMonitor},
		standaloneCommand(all),
		tasksCommand(),
		schemaCommand(),
		telemetryIndexCommand(),
		sampleCommand(),
		healthcheckCommand(),
		versionCommand(),
	}
}

// exactly accepts one positional argument, named in the error.
func exactly(name string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) == 0:
			return usageErrorf("%s missing (usage: %s)", name, cmd.UseLine())
		case len(args) > 1:
			return usageErrorf("unexpected argument %q (usage: %s)", args[1], cmd.UseLine())
		}
		return nil
	}
}

// atMostOne accepts zero or one positional argument.
func atMostOne(cmd *cobra.Command, args []string) error {
	if len(args) > 1 {
		return usageErrorf("unexpected argument %q (usage: %s)", args[1], cmd.UseLine())
	}
	return nil
}

// noArgs refuses every positional argument: a word a command ignores
// would read as if it did something.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("unexpected argument %q (usage: %s)", args[0], cmd.UseLine())
	}
	return nil
}

// Main runs the apmtel command and returns its exit status: 0 done, 1 a
// failure (a task, an upload, a refused transition), 2 a usage error.
//
// cobra is the command tree, `help CMD`, suggestions and shell completion;
// pflag parses typed flags anywhere among the arguments. Each command's
// flags are its own, then those of the configuration groups it reads; every
// setting also has an APMTEL_* variable, and secrets have only that.
func Main(args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	root := &cobra.Command{
		Use:   "apmtel",
		Short: "apmtel collects Elastic APM data telemetry with distributed job-queue workers",
		Long: "apmtel collects Elastic APM data telemetry with distributed job-queue workers.\n\n" +
			"Every flag has an APMTEL_* environment variable (docs/configuration.md); secrets are\n" +
			"read only from the environment or from files named by APMTEL_*_FILE, never from flags.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Get().String(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	root.SetFlagErrorFunc(flagError)
	for _, c := range commands() {
		root.AddCommand(build(c, stdout, stderr, lookup))
	}
	root.SetHelpCommand(helpCommand(root))
	if len(args) == 0 {
		_ = root.Help()
		return 2
	}
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	name := cmd.CommandPath()
	var ue *config.UsageError
	var ee *exitError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%s: %s\n", name, oneLine(ue.Err))
		if cmd.Name() == "healthcheck" {
			return 1 // Docker reserves status 2
		}
		return 2
	case errors.As(err, &ee):
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintf(stderr, "%s: %s\n", name, oneLine(ee.err))
		}
		return ee.code
	case cmd == root && strings.HasPrefix(err.Error(), "unknown command"):
		fmt.Fprintln(stderr, unknownCommand(root, args[0]))
		return 2
	case cmd == root:
		fmt.Fprintf(stderr, "apmtel: %s\n", oneLine(err))
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %s\n", name, oneLine(err))
		return 1
	}
}

// unknownCommand is the one line for a word that is no command.
func unknownCommand(parent *cobra.Command, word string) string {
	msg := fmt.Sprintf("%s: unknown command %q", parent.CommandPath(), word)
	if s := parent.SuggestionsFor(word); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %q?)", s[0])
	}
	return msg + "; see " + parent.CommandPath() + " --help"
}

// helpCommand is `apmtel help [CMD ...]`: an unknown CMD is refused as an
// unknown command is (one line, a suggestion, exit 2).
func helpCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "help about any command",
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			var out []string
			cmd, _, err := root.Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), toComplete) {
					out = append(out, sub.Name())
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 {
				parent, word := root, args[0]
				if err == nil {
					parent, word = cmd, rest[0]
				}
				if len(args) > 1 && err != nil {
					if p, _, perr := root.Find(args[:len(args)-1]); perr == nil {
						parent, word = p, args[len(args)-1]
					}
				}
				return &exitError{code: 2, err: errors.New(strings.TrimPrefix(unknownCommand(parent, word), parent.CommandPath()+": "))}
			}
			return cmd.Help()
		},
	}
}

// build turns c into a cobra command.
func build(c command, stdout, stderr io.Writer, lookup func(string) (string, bool)) *cobra.Command {
	use := c.name
	if c.usage == "" && len(c.subs) > 0 {
		var names []string
		for _, sc := range c.subs {
			names = append(names, sc.name)
		}
		c.usage = strings.Join(names, "|")
	}
	if c.usage != "" {
		use += " " + c.usage
	}
	cmd := &cobra.Command{
		Use:           use,
		Short:         c.summary,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          c.args,
		Annotations:   map[string]string{"envOnly": strings.Join(c.envOnly, " ")},
		// cobra suggests within two edits only when this is set (it sets it
		// for the root command alone).
		SuggestionsMinimumDistance: 2,
	}
	if cmd.Args == nil {
		cmd.Args = noArgs
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	if c.flags != nil {
		c.flags(fs)
	}
	if len(c.groups) > 0 {
		settings := new(pflag.FlagSet)
		config.AddFlags(settings, c.groups...)
		settings.VisitAll(func(f *pflag.Flag) {
			if !slices.Contains(c.envOnly, f.Name) {
				fs.AddFlag(f)
			}
		})
	}
	cmd.InitDefaultHelpFlag()
	registerValueCompletions(cmd)
	if cmd.Flags().Lookup("cluster") != nil {
		_ = cmd.RegisterFlagCompletionFunc("cluster", completeClusters(lookup))
	}
	cmd.ValidArgsFunction = c.complete
	if cmd.ValidArgsFunction == nil {
		cmd.ValidArgsFunction = cobra.NoFileCompletions
	}
	cmd.SetUsageFunc(usage)
	if c.run != nil {
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			e := &env{stdout: stdout, stderr: stderr, lookup: lookup, cfg: config.Default(), flags: cmd.Flags()}
			if len(c.groups) > 0 {
				cfg, err := config.Load(cmd.Flags(), lookup, c.groups...)
				if err != nil {
					return err
				}
				if slices.Contains(c.groups, gRedis) {
					if _, err := redisconn.TLS(cfg); err != nil {
						return err
					}
				}
				e.cfg = cfg
			}
			return c.run(e, args)
		}
	} else {
		// A family of subcommands: a missing or unknown word is a usage error.
		cmd.Args = cobra.ArbitraryArgs
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("which one? %s (see %s --help)", subNames(cmd), cmd.CommandPath())
			}
			return &exitError{code: 2, err: errors.New(strings.TrimPrefix(unknownCommand(cmd, args[0]), cmd.CommandPath()+": "))}
		}
	}
	for _, s := range c.subs {
		cmd.AddCommand(build(s, stdout, stderr, lookup))
	}
	return cmd
}

func subNames(cmd *cobra.Command) string {
	var out []string
	for _, s := range cmd.Commands() {
		out = append(out, s.Name())
	}
	return strings.Join(out, ", ")
}

// usage prints a command's help: its own flags (the most used first), then
// the settings it reads, then the global settings, each with its type and
// default as pflag renders them.
func usage(cmd *cobra.Command) error {
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "Usage: %s\n", cmd.UseLine())
	if cmd.HasAvailableSubCommands() {
		fmt.Fprintln(w, "\nCommands:")
		for _, s := range cmd.Commands() {
			if s.IsAvailableCommand() {
				fmt.Fprintf(w, "  %-12s %s\n", s.Name(), s.Short)
			}
		}
	}
	own := new(pflag.FlagSet)
	settings := new(pflag.FlagSet)
	global := new(pflag.FlagSet)
	cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
		o, ok := config.OptionOf(f)
		switch {
		case !ok:
			own.AddFlag(f)
		case slices.Contains(globalGroups, o.Group):
			global.AddFlag(f)
		default:
			settings.AddFlag(f)
		}
	})
	for _, s := range []struct {
		title string
		fs    *pflag.FlagSet
	}{{"Flags", own}, {"Settings", settings}, {"Global flags", global}} {
		if s.fs.HasFlags() {
			fmt.Fprintf(w, "\n%s:\n%s", s.title, s.fs.FlagUsages())
		}
	}
	if settings.HasFlags() || global.HasFlags() {
		fmt.Fprintln(w, "\nEvery setting has the APMTEL_* variable in brackets; secrets come from the environment or APMTEL_*_FILE only.")
	}
	return nil
}

// flagError turns pflag's errors into one line in the environment's words:
// the flag as help spells it, the same hint for a bad value, a suggestion
// for a typo, and where a secret goes instead.
func flagError(cmd *cobra.Command, err error) error {
	var notExist *pflag.NotExistError
	var invalid *pflag.InvalidValueError
	var required *pflag.ValueRequiredError
	switch {
	case errors.As(err, &notExist):
		name := notExist.GetSpecifiedName()
		typed := "--" + name
		if short := notExist.GetSpecifiedShortnames(); short != "" {
			typed = "-" + short
		}
		if serr := config.SecretFlag(name); serr != nil {
			return &config.UsageError{Err: serr}
		}
		for _, o := range config.Options() {
			if o.Flag != name {
				continue
			}
			if hint, ok := workerOnly[name]; ok {
				return usageErrorf("%s is a worker setting: %s", typed, hint)
			}
			if slices.Contains(strings.Fields(cmd.Annotations["envOnly"]), name) {
				return usageErrorf("%s is no flag of %s: %s is the workers' setting, read from the environment", typed, cmd.CommandPath(), o.Env)
			}
			return usageErrorf("%s: %s does not read %s", typed, cmd.CommandPath(), o.Env)
		}
		if s := suggestFlag(cmd, name); s != "" {
			return usageErrorf("unknown flag %s (did you mean --%s?)", typed, s)
		}
		return usageErrorf("unknown flag %s (see %s --help)", typed, cmd.CommandPath())
	case errors.As(err, &invalid):
		f := invalid.GetFlag()
		return usageErrorf("--%s: %s", f.Name, valueProblem(f, invalid.GetValue(), invalid.Unwrap()))
	case errors.As(err, &required):
		return usageErrorf("--%s needs a value", required.GetFlag().Name)
	}
	return &config.UsageError{Err: err}
}

// valueProblem says what is wrong with value v of flag f, as the
// environment path says it.
func valueProblem(f *pflag.Flag, v string, err error) error {
	switch f.Value.Type() {
	case "duration":
		if _, perr := config.ParseDuration(v); perr != nil {
			return perr
		}
	case "int", "int64":
		return fmt.Errorf("%q is not an integer", v)
	case "bool":
		return fmt.Errorf("%q is not a boolean (true/false)", v)
	}
	return err
}

// suggestFlag is the command's flag closest to a mistyped name: one it
// starts (-w for --wait), else one within two edits.
func suggestFlag(cmd *cobra.Command, name string) string {
	best, bestD := "", 3
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		d := levenshtein.ComputeDistance(name, f.Name)
		if len(name) == 1 && strings.HasPrefix(f.Name, name) {
			d = 0
		}
		if d < bestD {
			best, bestD = f.Name, d
		}
	})
	return best
}

func oneLine(err error) string { return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ") }

// selectTasks selects the named tasks (all when none), refusing an unknown
// name with the closest one.
func selectTasks(names []string) ([]telemetry.Task, error) {
	tasks, err := telemetry.Default().Select(names)
	if err == nil {
		return tasks, nil
	}
	known := telemetry.Default().Names()
	for _, n := range names {
		if slices.Contains(known, n) {
			continue
		}
		best, bestD := "", 4
		for _, k := range known {
			if d := levenshtein.ComputeDistance(n, k); d < bestD {
				best, bestD = k, d
			}
		}
		if best != "" {
			return nil, usageErrorf("unknown telemetry task %s (did you mean %s?); `apmtel tasks` lists them", n, best)
		}
		return nil, usageErrorf("unknown telemetry task %s; `apmtel tasks` lists them", n)
	}
	return nil, &config.UsageError{Err: err}
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
	// Metered: a task's and an errand's waits for the gate and request time
	// are recorded with their attempt (collect.Meter).
	return es.NewClient(es.ClientParams{Cluster: cfg.Source, CACertSetting: "APMTEL_SOURCE_CA_CERT", Gate: collect.MeteredGate(gate), MaxBody: int64(cfg.SearchMaxAnswerMB) << 20})
}

func newSink(cfg config.Config, l zerolog.Logger) (uploader.Sink, error) {
	if cfg.TelemetryEndpoint != "" {
		return newChannelSink(cfg)
	}
	if !cfg.Telemetry.Configured() {
		return uploader.FileSink{Dir: filepath.Join(cfg.DataDir, "payloads")}, nil
	}
	warnInsecure(l, "telemetry", cfg.Telemetry)
	c, err := es.NewClient(es.ClientParams{Cluster: cfg.Telemetry, CACertSetting: "APMTEL_TELEMETRY_CA_CERT"})
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

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
