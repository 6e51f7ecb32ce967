package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/apmtel/apmtel/internal/collect"
	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/fleet"
	"github.com/apmtel/apmtel/internal/limiter"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/internal/uploader"
	"github.com/apmtel/apmtel/scheduler"
	"github.com/apmtel/apmtel/workers"
)

// workerOnly are settings that only a worker reads, with what to do
// instead: `run --opt-in=false`, meant as a dry run, would not stop the
// workers from uploading.
var workerOnly = map[string]string{"opt-in": "use `apmtel run --no-upload` for a dry run; APMTEL_OPT_IN is read by the workers"}

// runOpts are run's own flags.
type runOpts struct {
	tasks                         []string
	wait, noUpload, asJSON, force bool
	waitTimeout, poll             time.Duration
	// clusters are the --cluster names; all is --all.
	clusters []string
	all      bool
}

func runCommand(store []string) command {
	o := &runOpts{}
	return command{name: "run", summary: "start a run now; --wait follows it to its upload", usage: "[TASK ...]",
		// The task timeout is the workers' (APMTEL_TASK_TIMEOUT bounds a
		// task); the scheduler side reads it only to size asynq's job timeout.
		groups: append([]string{gIndices, gTask, gRun}, store...), envOnly: []string{"task-timeout"},
		args: cobra.ArbitraryArgs, complete: completeTasks,
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVarP(&o.wait, "wait", "w", false, "show live progress until the upload ended; exit 1 if a task or the upload failed")
			fs.DurationVar(&o.waitTimeout, "timeout", 0, "with --wait: give up after this long, exit 1 (default: APMTEL_RUN_DEADLINE plus 1m)")
			fs.BoolVar(&o.asJSON, "json", false, "with --wait: print only one JSON document on stdout, the run and its task records")
			fs.BoolVar(&o.noUpload, "no-upload", false, "dry run: collect every task, store and report, never upload")
			fs.StringArrayVar(&o.tasks, "task", nil, "run only this task, like a TASK argument (repeatable; a partial run: reported, never latest, never uploaded)")
			fs.BoolVar(&o.force, "force", false, "start a full run even while another one is in progress")
			fs.StringArrayVar(&o.clusters, "cluster", nil, "run this cluster of the clusters file, even while it is backing off (repeatable; not needed with one cluster)")
			fs.BoolVar(&o.all, "all", false, "run every enabled cluster; with --wait one summary line per cluster (--json: one list)")
			fs.DurationVar(&o.poll, "poll", 250*time.Millisecond, "with --wait: how often to read the run's state (benchmarks use a few ms)")
			fs.DurationVar(&o.waitTimeout, "wait-timeout", 0, "the old name of --timeout")
			_ = fs.MarkHidden("wait-timeout")
		},
		run: func(e *env, args []string) error { return runRun(e, o, args) }}
}

func runRun(e *env, o *runOpts, args []string) error {
	cfg, wait, noUpload, asJSON, force, waitTimeout, poll := e.cfg, o.wait, o.noUpload, o.asJSON, o.force, o.waitTimeout, o.poll
	if poll < time.Millisecond {
		return usageErrorf("--poll: %s is below 1ms", poll)
	}
	if !wait {
		for _, name := range []string{"timeout", "wait-timeout", "json", "poll"} {
			if e.flags.Changed(name) {
				return usageErrorf("--%s needs --wait", name)
			}
		}
	}
	tasks := append(slices.Clone(o.tasks), args...)
	// Reject unknown tasks before touching Redis, so nothing is enqueued.
	if _, err := selectTasks(tasks); err != nil {
		return err
	}
	kind := run.KindFull
	switch {
	case len(tasks) > 0:
		kind = run.KindPartial
	case noUpload:
		kind = run.KindDryRun
	}
	set, err := clusterSet(cfg)
	if err != nil {
		return err
	}
	var clusters []fleet.Cluster
	switch {
	case o.all && len(o.clusters) > 0:
		return usageErrorf("--all runs every enabled cluster: leave out --cluster")
	case o.all:
		if clusters = set.Enabled(); len(clusters) == 0 {
			return &exitError{code: 1, err: errors.New("no cluster is enabled (`apmtel clusters` says why)")}
		}
	default:
		if clusters, err = pickClusters(set, o.clusters); err != nil {
			return err
		}
	}
	if o.all || len(clusters) > 1 {
		return runMany(e, o, set, clusters, kind, tasks)
	}
	if c := clusters[0]; !c.Enabled && set.Origin() == fleet.OriginFile {
		return &exitError{code: 1, err: fmt.Errorf("cluster %s is disabled: %s", c.Name, c.DisabledReason)}
	}
	if cfg, err = clusterConfig(cfg, set, clusters[0]); err != nil {
		return err
	}
	// The command's own lines say what happened; the scheduler's log would repeat it.
	l := newLogger(e, cfg).Level(zerolog.WarnLevel)
	rt, err := openRuntime(cfg, "run")
	if err != nil {
		return err
	}
	defer rt.Close()
	st := newRuns(rt.rdb, cfg)
	s := &scheduler.Scheduler{Config: cfg, Runs: st, Registry: telemetry.Default(), Enqueuer: rt.client, Logger: l}
	ctx, stop := signalContext()
	defer stop()
	id, followed, err := startManual(ctx, s, kind, tasks, force)
	if err != nil {
		return err
	}
	if followed != nil {
		fmt.Fprintf(e.stderr, "a full run is already in progress (%s, %s): following it instead of starting another (--force starts one)\n", followed.ID, followed.Trigger)
	}
	if asJSON {
		// stdout holds the JSON document only.
		fmt.Fprintf(e.stderr, "run %s\n", id)
	} else {
		fmt.Fprintln(e.stdout, id)
	}
	if !wait {
		return nil
	}
	if waitTimeout == 0 {
		waitTimeout = cfg.RunDeadline + time.Minute
	}
	wctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	w := &waiter{runs: st, insp: rt.insp, out: e.stderr, redisAddr: cfg.RedisAddr, redisDB: cfg.RedisDB, poll: poll}
	r, results, err := w.wait(wctx, id)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return &exitError{code: 1, err: fmt.Errorf("run %s: gave up waiting after %s (--timeout): %s", id, waitTimeout, w.status)}
		}
		return err
	}
	attempts, err := st.Attempts(ctx, id)
	if err != nil {
		return err
	}
	breakdown := run.BreakdownOf(r, attempts)
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"run": r, "tasks": results, "breakdown": breakdown}); err != nil {
			return err
		}
	} else {
		printSummary(e.stdout, r, results)
		printBreakdown(e.stdout, breakdown)
		// The console is the monitor's: run reads its address only to link it.
		mc := config.Default()
		_ = config.FromEnv(&mc, e.lookup, func(o config.Option) bool {
			return o.Env == "APMTEL_MONITOR_ADDR" || o.Env == "APMTEL_MONITOR_HOSTS"
		})
		if u := consoleRunURL(mc, id); u != "" {
			fmt.Fprintf(e.stdout, "console: %s\n", u)
		}
	}
	failed := 0
	for _, name := range r.Tasks {
		if results[name].Status != run.TaskOK {
			failed++
		}
	}
	switch {
	case r.Status == run.StatusCancelled:
		return &exitError{code: 1, err: fmt.Errorf("run %s was cancelled", id)}
	case failed > 0:
		return &exitError{code: 1, err: fmt.Errorf("%d of %d tasks failed", failed, len(r.Tasks))}
	case r.Upload.State == run.UploadFailed:
		return &exitError{code: 1, err: fmt.Errorf("upload failed: %s", r.Upload.Error)}
	}
	return nil
}

// startManual starts a manual run of kind through s; a full run without
// --force follows the full run already in progress instead (runs never
// overlap), which it returns as followed. run and run --all both start
// their runs here.
func startManual(ctx context.Context, s *scheduler.Scheduler, kind run.Kind, tasks []string, force bool) (id string, followed *run.Run, err error) {
	id = scheduler.ManualRunID(time.Now())
	if kind == run.KindFull && !force {
		r, started, err := s.StartFull(ctx, id, "manual")
		if err != nil {
			return "", nil, err
		}
		if !started {
			return r.ID, &r, nil
		}
		return id, nil, nil
	}
	if _, err := s.StartRun(ctx, id, "manual", kind, tasks); err != nil {
		return "", nil, err
	}
	return id, nil, nil
}

// waiter follows a run until its upload ended, printing each task's state
// change and warning when no worker is connected.
type waiter struct {
	runs      *run.Store
	insp      *asynq.Inspector
	out       io.Writer
	redisAddr string
	redisDB   int
	// outage is set while Redis does not answer (said once per outage).
	outage bool
	// status is the last progress line, for the timeout message.
	status string
	// final counts the tasks whose final line was printed.
	final int
	// Poll and WorkerCheck pace the loop; zero values use 250 ms and 1 s.
	poll time.Duration
}

func (w *waiter) wait(ctx context.Context, id string) (run.Run, map[string]run.TaskRecord, error) {
	poll := w.poll
	if poll == 0 {
		poll = 250 * time.Millisecond
	}
	shown := map[string]string{}
	lastWorkerCheck := time.Time{}
	workers := -1
	for {
		r, err := w.runs.Get(ctx, id)
		var results map[string]run.TaskRecord
		if err == nil {
			results, err = w.runs.Results(ctx, id)
		}
		if err != nil {
			// A Redis outage is ridden out up to --timeout, like the
			// workers' bridge: the run goes on without this command.
			if errors.Is(err, run.ErrNotFound) || ctx.Err() != nil {
				return r, nil, err
			}
			if !w.outage {
				w.outage = true
				fmt.Fprintf(w.out, "Redis at %s does not answer (%s): still waiting for run %s until --timeout\n", w.redisAddr, oneLine(err), id)
			}
			w.status = "Redis did not answer: " + oneLine(err)
			select {
			case <-ctx.Done():
				return r, nil, ctx.Err()
			case <-time.After(poll):
			}
			continue
		}
		if w.outage {
			w.outage = false
			fmt.Fprintln(w.out, "Redis answers again")
		}
		done := 0
		for _, name := range r.Tasks {
			rec, ok := results[name]
			if ok && rec.Status.Final() {
				done++
			}
			line := taskLine(rec, ok)
			if shown[name] == line {
				continue
			}
			shown[name] = line
			// The counter counts final lines as they are printed, so it only goes up.
			if ok && rec.Status.Final() {
				w.final++
			}
			fmt.Fprintf(w.out, "[%2d/%d] %-26s %s\n", w.final, len(r.Tasks), name, line)
		}
		for _, e := range r.Errands {
			if line := errandLine(e); shown["\x00errand:"+e.Name] != line {
				shown["\x00errand:"+e.Name] = line
				// The state starts in the tasks' column: "[errand]" is wider than "[ 1/21]".
				width := max(0, 26+len(fmt.Sprintf("[%2d/%d]", len(r.Tasks), len(r.Tasks)))-len("[errand]"))
				fmt.Fprintf(w.out, "[errand] %-*s %s\n", width, e.Name, line)
			}
		}
		if time.Since(lastWorkerCheck) >= time.Second && w.insp != nil {
			lastWorkerCheck = time.Now()
			n := -1
			if servers, err := w.insp.Servers(); err == nil {
				n = len(servers)
			}
			if n != workers && n >= 0 {
				if n == 0 {
					fmt.Fprintf(w.out, "WARNING: no worker connected to Redis %s database %d: the run waits in the queue. Start one with `apmtel worker` (same APMTEL_REDIS_ADDR and APMTEL_REDIS_DB).\n", w.redisAddr, w.redisDB)
				} else {
					fmt.Fprintf(w.out, "%d worker(s) connected\n", n)
				}
				workers = n
			}
		}
		w.status = fmt.Sprintf("%d/%d tasks final, run %s, upload %s", done, len(r.Tasks), r.Status, r.Upload)
		if r.Status.Terminal() {
			if key := "upload " + r.Upload.String(); shown["\x00upload"] != key {
				shown["\x00upload"] = key
				fmt.Fprintf(w.out, "run %s %s; upload %s\n", r.ID, r.Status, uploadLine(r.Upload))
			}
			if r.Upload.State.Ended() {
				return r, results, nil
			}
		}
		select {
		case <-ctx.Done():
			return r, results, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// taskLine renders a task's live state: "queued", "running (attempt 2/4 on
// host/42)", "retrying 2/4: last error", "ok 123ms".
func taskLine(rec run.TaskRecord, ok bool) string {
	if !ok {
		return string(run.TaskQueued)
	}
	attempt := ""
	if rec.Attempt > 0 {
		attempt = fmt.Sprintf("%d", rec.Attempt)
		if rec.MaxAttempts > 0 {
			attempt += fmt.Sprintf("/%d", rec.MaxAttempts)
		}
	}
	switch rec.Status {
	case run.TaskRunning:
		s := "running (attempt " + attempt + " on " + rec.Worker + ")"
		if rec.LastError != "" {
			s += "; last error: " + rec.LastError
		}
		return s
	case run.TaskRetrying:
		return "retrying " + attempt + ": " + rec.Error
	case run.TaskOK:
		return fmt.Sprintf("ok %dms", rec.TookMS)
	}
	return fmt.Sprintf("%s %dms: %s", rec.Status, rec.TookMS, rec.Error)
}

// errandLine renders an errand's live state: "running on host/42", "ok
// 212ms, 6 requests (slot wait 4ms, longest 2ms)", "failed 5000ms: …".
func errandLine(e run.Errand) string {
	if e.Status == run.TaskRunning {
		return "running on " + e.Worker
	}
	s := fmt.Sprintf("%s %dms, %d requests (slot wait %dms, longest %dms)", e.Status, e.TookMS, e.Requests, e.SlotWaitMS, e.SlotWaitMaxMS)
	if e.Error != "" {
		s += ": " + e.Error
	}
	return s
}

// printBreakdown prints where the run's wall time went (run.BreakdownOf).
func printBreakdown(w io.Writer, b run.Breakdown) {
	// A cancelled run has no end to account to.
	if b.Critical == "" || b.WallMS == 0 {
		return
	}
	fmt.Fprintf(w, "wall time %dms; critical path through task %s:\n", b.WallMS, b.Critical)
	tw := newTable(w)
	for _, st := range b.Steps {
		fmt.Fprintf(tw, "  %s\t%dms\n", st.Name, st.MS)
	}
	_ = tw.Flush()
}

func uploadLine(u run.Upload) string {
	s := u.String()
	switch {
	case u.State == run.UploadRetrying && u.Error != "":
		s += ": " + u.Error
	case u.State == run.UploadFailed:
		s += ": " + u.Error
	case u.State.Delivered() && u.Detail != "":
		s += " to " + u.Detail
	}
	return s
}

// printSummary prints a table of the run's tasks.
func printSummary(w io.Writer, r run.Run, results map[string]run.TaskRecord) {
	tw := newTable(w)
	fmt.Fprintf(tw, "TASK\tSTATUS\tTOOK_MS\tATTEMPT\tWORKER\tERROR\n")
	ok := 0
	for _, name := range r.Tasks {
		rec, seen := results[name]
		if rec.Status == run.TaskOK {
			ok++
		}
		if !seen {
			rec.Status = run.TaskQueued
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", name, rec.Status, rec.TookMS, rec.Attempt, rec.Worker, rec.Error)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "run %s (%s): %s, %d/%d tasks ok, upload %s\n", r.ID, r.Kind, r.Status, ok, len(r.Tasks), uploadLine(r.Upload))
}

// runsOpts are runs's own flags.
type runsOpts struct {
	limit                 int
	asJSON, pendingUpload bool
	cluster               string
}

func runsCommand(store []string) command {
	o := &runsOpts{}
	return command{name: "runs", summary: "list recent runs (or show one): kind, status, duration, failed tasks, upload", usage: "[RUN]",
		groups: store, args: atMostOne,
		flags: func(fs *pflag.FlagSet) {
			fs.IntVar(&o.limit, "limit", 20, "how many runs")
			fs.BoolVar(&o.pendingUpload, "pending-upload", false, "only sealed full runs whose upload did not deliver (pending, retrying, failed)")
			fs.BoolVar(&o.asJSON, "json", false, "print one JSON array of the runs (with the upload's path)")
			addClusterFlag(fs, &o.cluster)
		},
		run: func(e *env, args []string) error { return runRuns(e, o, args) }}
}

func runRuns(e *env, o *runsOpts, args []string) error {
	limit, asJSON, pendingUpload := o.limit, o.asJSON, o.pendingUpload
	if limit < 1 {
		return usageErrorf("--limit: %d is below 1", limit)
	}
	if len(args) == 1 && (pendingUpload || e.flags.Changed("limit")) {
		return usageErrorf("RUN shows one run: --limit and --pending-upload list runs")
	}
	cfg, err := oneCluster(e, o.cluster)
	if err != nil {
		return err
	}
	rt, err := openRuntime(cfg, "runs")
	if err != nil {
		return err
	}
	defer rt.Close()
	st := newRuns(rt.rdb, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var runs []run.Run
	switch {
	case len(args) == 1:
		r, gerr := st.Get(ctx, args[0])
		if errors.Is(gerr, run.ErrNotFound) {
			return &exitError{code: 1, err: fmt.Errorf("no run %s", args[0])}
		}
		runs, err = []run.Run{r}, gerr
	case pendingUpload:
		runs, err = st.PendingUploads(ctx, limit)
	default:
		runs, err = st.List(ctx, limit)
	}
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if runs == nil {
			runs = []run.Run{}
		}
		return enc.Encode(runs)
	}
	if len(runs) == 0 {
		fmt.Fprintln(e.stdout, "none")
		return nil
	}
	tw := newTable(e.stdout)
	fmt.Fprintf(tw, "RUN\tTRIGGER\tKIND\tSTATUS\tCREATED\tDURATION\tTASKS\tFAILED\tUPLOAD\n")
	for _, r := range runs {
		failed, dur := "-", "-"
		if r.Report != nil {
			failed = fmt.Sprint(len(r.Report.Failed))
		}
		if !r.SealedAt.IsZero() {
			dur = r.SealedAt.Sub(r.CreatedAt).Round(time.Millisecond).String()
		} else if !r.ClosedAt.IsZero() {
			dur = r.ClosedAt.Sub(r.CreatedAt).Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, r.Trigger, r.Kind, r.Status,
			r.CreatedAt.Format(time.RFC3339), dur, len(r.Tasks), failed, uploadCell(r))
	}
	return tw.Flush()
}

// uploadCell is a run's upload as the console shows it: the state
// without the path (--json has it), "—" for a run that is never uploaded
// because it is partial.
func uploadCell(r run.Run) string {
	if r.Kind == run.KindPartial {
		return "—"
	}
	if r.Upload.State.Delivered() {
		return string(r.Upload.State)
	}
	return uploadLine(r.Upload)
}

// snapshotOpts are snapshot's own flags.
type snapshotOpts struct {
	runID, cluster string
	report, asJSON bool
}

func snapshotCommand(store []string) command {
	o := &snapshotOpts{}
	return command{name: "snapshot", summary: "print a stored telemetry object (latest by default), or a run's record", usage: "[RUN]",
		groups: store, args: atMostOne,
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&o.report, "report", false, "print the run's record (status, tasks, attempts, upload, report) instead of the telemetry object")
			fs.BoolVar(&o.asJSON, "json", false, "with --report: as one JSON document")
			fs.StringVar(&o.runID, "run", "", "run id (default: the latest sealed full run); may also be given as an argument")
			addClusterFlag(fs, &o.cluster)
		},
		run: func(e *env, args []string) error { return runSnapshot(e, o, args) }}
}

func runSnapshot(e *env, o *snapshotOpts, args []string) error {
	runID, report, asJSON := o.runID, o.report, o.asJSON
	switch {
	case asJSON && !report:
		return usageErrorf("--json needs --report (the telemetry object is JSON already)")
	case len(args) == 1 && runID != "" && runID != args[0]:
		return usageErrorf("two run ids: %s and %s", runID, args[0])
	case len(args) == 1:
		runID = args[0]
	}
	cfg, err := oneCluster(e, o.cluster)
	if err != nil {
		return err
	}
	rt, err := openRuntime(cfg, "snapshot")
	if err != nil {
		return err
	}
	defer rt.Close()
	st := newRuns(rt.rdb, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if runID == "" {
		runID, _, err = st.Latest(ctx)
		if errors.Is(err, run.ErrNotFound) {
			return errors.New("no sealed full run yet")
		}
		if err != nil {
			return err
		}
	}
	if report {
		r, err := st.Get(ctx, runID)
		if err != nil {
			return err
		}
		results, err := st.Results(ctx, runID)
		if err != nil {
			return err
		}
		attempts, err := st.Attempts(ctx, runID)
		if err != nil {
			return err
		}
		for k, rec := range results {
			rec.Result = nil
			results[k] = rec
		}
		if !asJSON {
			printSummary(e.stdout, r, results)
			if r.Report != nil {
				for _, p := range append(r.Report.Problems, r.Report.SchemaProblems...) {
					fmt.Fprintf(e.stdout, "problem: %s\n", p)
				}
			}
			fmt.Fprintf(e.stdout, "%d attempts recorded; --json shows them\n", len(attempts))
			return nil
		}
		b, _ := json.MarshalIndent(map[string]any{"run": r, "tasks": results, "attempts": attempts}, "", "  ")
		fmt.Fprintln(e.stdout, string(b))
		return nil
	}
	b, err := st.Snapshot(ctx, runID)
	if errors.Is(err, run.ErrNotFound) {
		if r, gerr := st.Get(ctx, runID); gerr == nil && !r.Status.Terminal() || gerr == nil && r.Status == run.StatusCancelled {
			return fmt.Errorf("run %s is %s: it has no snapshot", runID, r.Status)
		}
	}
	if err != nil {
		return err
	}
	if err := writeIndented(e.stdout, b); err != nil {
		return fmt.Errorf("snapshot of run %s is corrupt: %w", runID, err)
	}
	return nil
}

func writeIndented(w io.Writer, b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(out))
	return err
}

// previewOpts are preview's own flags.
type previewOpts struct {
	tasks    []string
	parallel int
	envelope bool
	cluster  string
}

func previewCommand() command {
	o := &previewOpts{}
	return command{name: "preview", summary: "run tasks in-process against the source cluster and print the telemetry object", usage: "[TASK ...]",
		groups: []string{gRedis, gLogging, gSource, gIndices, gTelemetry, gTask, gSchedule, gFleet},
		args:   cobra.ArbitraryArgs, complete: completeTasks,
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&o.envelope, "envelope", false, envelopeFlagHelp)
			fs.StringArrayVar(&o.tasks, "task", nil, "run only this task, like a TASK argument (repeatable; default: all)")
			fs.IntVar(&o.parallel, "parallel", 4, "tasks run at once (requests still obey APMTEL_SEARCH_CONCURRENCY)")
			addClusterFlag(fs, &o.cluster)
		},
		run: func(e *env, args []string) error { return runPreview(e, o, args) }}
}

func runPreview(e *env, o *previewOpts, args []string) error {
	parallel, envelope := o.parallel, o.envelope
	if parallel < 1 || parallel > 64 {
		return usageErrorf("--parallel: %d is out of range 1-64", parallel)
	}
	tasks := append(slices.Clone(o.tasks), args...)
	selected, err := selectTasks(tasks)
	if err != nil {
		return err
	}
	cfg, err := oneCluster(e, o.cluster)
	if err != nil {
		return err
	}
	l := newLogger(e, cfg)
	ctx, stop := signalContext()
	defer stop()
	// Preview shares the cluster-wide cap with the workers, so that trying
	// it on a busy deployment does not overload the source.
	var source *es.Client
	// With Redis, preview also knows what the source refused before (the
	// workers' memory of it), as a run's errand does, and whether the
	// slot's run is sealed already.
	var runs *run.Store
	var refusals uploader.Refusals
	if cfg.SearchConcurrency > 0 && cfg.Source.Configured() {
		// err is the function's: newClusterSource's error below must reach the check after the if.
		var rt *runtime
		rt, err = openRuntime(cfg, "preview")
		if err != nil {
			return fmt.Errorf("%w (preview obeys the cluster-wide APMTEL_SEARCH_CONCURRENCY held in Redis; set it to 0 to preview without Redis)", err)
		}
		defer rt.Close()
		runs = newRuns(rt.rdb, cfg)
		refusals = runs
		source, err = newClusterSource(cfg, l, rt.rdb)
	} else {
		source, err = newGatedSource(cfg, l, nil)
	}
	if err != nil {
		return err
	}
	var described func() (uploader.Source, error)
	if envelope {
		described = startDescribe(ctx, cfg, source, refusals)
	}
	all, rep, results := previewOnce(ctx, cfg, source, selected, parallel)
	b, err := json.Marshal(all.APM)
	if err == nil && envelope {
		b, err = previewEnvelope(ctx, e, cfg, described, runs, l, b, all.Plugins)
	} else if len(all.Plugins) > 0 {
		fmt.Fprintf(e.stderr, "not shown: the objects of %s (stack_stats.kibana.plugins.<name>); see --envelope\n",
			strings.Join(sortedKeys(all.Plugins), ", "))
	}
	if err != nil {
		return err
	}
	if err := writeIndented(e.stdout, b); err != nil {
		return err
	}
	for _, t := range selected {
		for _, w := range results[t.Name].Warnings {
			fmt.Fprintf(e.stderr, "task %s: warning: %s\n", t.Name, w)
		}
	}
	for _, name := range rep.Failed {
		fmt.Fprintf(e.stderr, "task %s %s: %s\n", name, results[name].Status, oneLine(errors.New(results[name].Error)))
	}
	if len(rep.Failed) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d tasks failed", len(rep.Failed), len(selected))}
	}
	return nil
}

// previewOnce runs tasks in-process through the workers' executor and
// assembles their telemetry objects as finalize would (without last good
// values): the APM object and the other plugins' objects.
func previewOnce(ctx context.Context, cfg config.Config, source es.Doer, tasks []telemetry.Task, parallel int) (collect.Assembled, run.Report, map[string]run.TaskRecord) {
	x := workers.NewExecutor(cfg, source)
	results := collect.Preview(ctx, x, "preview-"+time.Now().UTC().Format("20060102T150405Z"), tasks, cfg.Indices, parallel)
	names := make([]string, len(tasks))
	for i, t := range tasks {
		names[i] = t.Name
	}
	all, rep := collect.AssembleAll(telemetry.Default(), names, results, nil)
	return all, rep, results
}

// newClusterSource is preview's source client under the workers'
// cluster-wide semaphore in Redis (APMTEL_SEARCH_CONCURRENCY, 0 = none).
func newClusterSource(cfg config.Config, l zerolog.Logger, rdb redis.UniversalClient) (*es.Client, error) {
	var gate es.Gate
	if cfg.SearchConcurrency > 0 {
		gate = limiter.New(rdb, newRuns(rdb, cfg).Keys(), cfg.SearchConcurrency, limiter.Options{}).Gate
	}
	return newGatedSource(cfg, l, gate)
}

func cancelCommand(store []string) command {
	var cluster string
	return command{name: "cancel", summary: "cancel an open run: stop its in-flight searches, drop its queued jobs, no upload", usage: "RUN",
		groups: store, args: exactly("RUN"),
		flags: func(fs *pflag.FlagSet) { addClusterFlag(fs, &cluster) },
		run:   func(e *env, args []string) error { return runCancel(e, cluster, args) }}
}

func uploadCommand(store []string) command {
	var cluster string
	return command{name: "upload", summary: "send a sealed full run's payload (again): after its upload failed, or to repeat it", usage: "RUN",
		groups: append([]string{gRun}, store...), args: exactly("RUN"),
		flags: func(fs *pflag.FlagSet) { addClusterFlag(fs, &cluster) },
		run:   func(e *env, args []string) error { return runUpload(e, cluster, args) }}
}

func runCancel(e *env, cluster string, args []string) error {
	id := args[0]
	cfg, err := oneCluster(e, cluster)
	if err != nil {
		return err
	}
	rt, err := openRuntime(cfg, "cancel")
	if err != nil {
		return err
	}
	defer rt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := scheduler.Cancel(ctx, newRuns(rt.rdb, cfg), rt.insp, id)
	var se *run.StateError
	if errors.As(err, &se) {
		return &exitError{code: 1, err: se}
	}
	if err != nil {
		return err
	}
	// Count tasks as the report and the console do: the run's cancelled
	// records, not the asynq jobs touched.
	st := newRuns(rt.rdb, cfg)
	results, err := st.Results(ctx, id)
	if err != nil {
		return fmt.Errorf("run %s cancelled, but its tasks could not be read: %w", id, err)
	}
	n := 0
	for _, rec := range results {
		if rec.Status == run.TaskCancelled {
			n++
		}
	}
	fmt.Fprintf(e.stdout, "run %s cancelled: %d tasks cancelled (%d were running: their searches stopped), no upload\n", id, n, c.Stopped)
	return nil
}

func runUpload(e *env, cluster string, args []string) error {
	id := args[0]
	cfg, err := oneCluster(e, cluster)
	if err != nil {
		return err
	}
	rt, err := openRuntime(cfg, "upload")
	if err != nil {
		return err
	}
	defer rt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := scheduler.Resend(ctx, newRuns(rt.rdb, cfg), rt.client, cfg.Timing(), id); err != nil {
		var se *run.StateError
		if errors.As(err, &se) || errors.Is(err, run.ErrNotFound) {
			return &exitError{code: 1, err: err}
		}
		return err
	}
	fmt.Fprintf(e.stdout, "run %s: upload enqueued; `apmtel runs` shows its outcome\n", id)
	return nil
}
