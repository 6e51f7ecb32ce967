package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/collect"
	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/limiter"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/internal/uploader"
	"github.com/apmtel/apmtel/scheduler"
)

// workerOnly are settings that only a worker reads; giving them to another
// command is a mistake worth a clear error (e.g. `run --opt-in false`, meant
// as a dry run, would not stop the workers from uploading).
var workerOnly = map[string]string{"opt-in": "use `apmtel run --no-upload` for a dry run; APMTEL_OPT_IN is read by the workers"}

func rejectWorkerFlags(args []string) error {
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if hint, ok := workerOnly[name]; ok && strings.HasPrefix(a, "-") {
			return &config.UsageError{Err: fmt.Errorf("--%s is a worker setting: %s", name, hint)}
		}
	}
	return nil
}

func runRun(e *env, args []string) error {
	var tasks multiFlag
	var wait, noUpload, asJSON, force bool
	var waitTimeout, poll time.Duration
	if err := rejectWorkerFlags(args); err != nil {
		return err
	}
	cfg, fs, err := load(e, "run", "[TASK ...] [--no-upload] [--force] [--wait [--timeout D] [--json]]", args, func(fs *flag.FlagSet) {
		fs.Var(&tasks, "task", "run only this task, like a TASK argument (repeatable; a partial run: reported, never latest, never uploaded)")
		fs.BoolVar(&force, "force", false, "start a full run even while another one is in progress")
		fs.BoolVar(&noUpload, "no-upload", false, "dry run: collect every task, store and report, never upload")
		fs.BoolVar(&wait, "wait", false, "show live progress until the upload ended; exit 1 if a task or the upload failed")
		fs.DurationVar(&waitTimeout, "timeout", 0, "with --wait: give up after this long, exit 1 (default: the run deadline plus 1m)")
		fs.DurationVar(&waitTimeout, "wait-timeout", 0, "the old name of --timeout")
		fs.BoolVar(&asJSON, "json", false, "with --wait: print the run and its task records as JSON at the end")
		fs.DurationVar(&poll, "poll", 250*time.Millisecond, "with --wait: how often to read the run's state (benchmarks use a few ms)")
	})
	if err != nil {
		return err
	}
	if poll < time.Millisecond {
		return &config.UsageError{Err: fmt.Errorf("--poll %s: must be at least 1ms", poll)}
	}
	tasks = append(tasks, fs.Args()...)
	// Reject unknown tasks before touching Redis, so nothing is enqueued.
	if _, err := telemetry.Default().Select(tasks); err != nil {
		return &exitError{code: 2, err: err}
	}
	kind := run.KindFull
	switch {
	case len(tasks) > 0:
		kind = run.KindPartial
	case noUpload:
		kind = run.KindDryRun
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
	id := ""
	if kind == run.KindFull && !force {
		// Runs never overlap: a full run in progress is the one asked for.
		if r, open, err := st.OpenFull(ctx); err == nil && open {
			id = r.ID
			fmt.Fprintf(e.stderr, "a full run is already in progress (%s, %s): following it instead of starting another (--force starts one)\n", r.ID, r.Trigger)
		}
	}
	if id == "" {
		id = scheduler.ManualRunID(time.Now())
		if _, err := s.StartRun(ctx, id, "manual", kind, tasks); err != nil {
			return err
		}
	}
	fmt.Fprintln(e.stdout, id)
	if !wait {
		return nil
	}
	if waitTimeout == 0 {
		waitTimeout = cfg.RunDeadline + time.Minute
	}
	wctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	w := &waiter{runs: st, insp: rt.insp, out: e.stderr, redisAddr: cfg.RedisAddr, poll: poll}
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
		if u := consoleRunURL(cfg, id); u != "" {
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

// waiter follows a run until its upload ended, printing each task's state
// change and warning when no worker is connected.
type waiter struct {
	runs      *run.Store
	insp      *asynq.Inspector
	out       io.Writer
	redisAddr string
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
		if err != nil {
			return r, nil, err
		}
		results, err := w.runs.Results(ctx, id)
		if err != nil {
			return r, nil, err
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
				fmt.Fprintf(w.out, "[errand] %-26s %s\n", e.Name, line)
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
					fmt.Fprintf(w.out, "WARNING: no worker connected to Redis %s: the run waits in the queue. Start one with `apmtel worker` (same APMTEL_REDIS_ADDR).\n", w.redisAddr)
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
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
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
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "TASK\tSTATUS\tTOOK_MS\tATTEMPT\tWORKER\tERROR\n")
	ok := 0
	for _, name := range r.Tasks {
		rec := results[name]
		if rec.Status == run.TaskOK {
			ok++
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", name, rec.Status, rec.TookMS, rec.Attempt, rec.Worker, rec.Error)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "run %s (%s): %s, %d/%d tasks ok, upload %s\n", r.ID, r.Kind, r.Status, ok, len(r.Tasks), uploadLine(r.Upload))
}

func runRuns(e *env, args []string) error {
	var limit int
	var asJSON, pendingUpload bool
	cfg, _, err := load(e, "runs", "[--limit N] [--pending-upload] [--json]", args, func(fs *flag.FlagSet) {
		fs.IntVar(&limit, "limit", 20, "how many runs")
		fs.BoolVar(&asJSON, "json", false, "print JSON")
		fs.BoolVar(&pendingUpload, "pending-upload", false, "only sealed full runs whose upload did not deliver (pending, retrying, failed)")
	})
	if err != nil {
		return err
	}
	rt, err := openRuntime(cfg, "runs")
	if err != nil {
		return err
	}
	defer rt.Close()
	st := newRuns(rt.rdb, cfg)
	var runs []run.Run
	if pendingUpload {
		runs, err = st.PendingUploads(context.Background(), limit)
	} else {
		runs, err = st.List(context.Background(), limit)
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
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
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
			r.CreatedAt.Format(time.RFC3339), dur, len(r.Tasks), failed, uploadLine(r.Upload))
	}
	return tw.Flush()
}

func runSnapshot(e *env, args []string) error {
	var runID string
	var report, asJSON bool
	cfg, fs, err := load(e, "snapshot", "[RUN] [--report [--json]]", args, func(fs *flag.FlagSet) {
		fs.StringVar(&runID, "run", "", "run id (default: the latest sealed full run); may also be given as an argument")
		fs.BoolVar(&report, "report", false, "print the run's record (status, tasks, attempts, upload, report) instead of the telemetry object")
		fs.BoolVar(&asJSON, "json", false, "with --report: as JSON")
	})
	if err != nil {
		return err
	}
	switch {
	case fs.NArg() > 1:
		return &config.UsageError{Err: errors.New("usage: apmtel snapshot [RUN] [--report]")}
	case fs.NArg() == 1 && runID != "" && runID != fs.Arg(0):
		return &config.UsageError{Err: fmt.Errorf("two run ids: %s and %s", runID, fs.Arg(0))}
	case fs.NArg() == 1:
		runID = fs.Arg(0)
	}
	rt, err := openRuntime(cfg, "snapshot")
	if err != nil {
		return err
	}
	defer rt.Close()
	st := newRuns(rt.rdb, cfg)
	ctx := context.Background()
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

func runPreview(e *env, args []string) error {
	var tasks multiFlag
	var parallel int
	var envelope bool
	cfg, fs, err := load(e, "preview", "[--task NAME ...] [--parallel N] [--envelope]", args, func(fs *flag.FlagSet) {
		fs.Var(&tasks, "task", "run only this task (repeatable; default: all)")
		fs.IntVar(&parallel, "parallel", 4, "tasks run at once (requests still obey APMTEL_SEARCH_CONCURRENCY)")
		fs.BoolVar(&envelope, "envelope", false, envelopeFlagHelp)
	})
	if err != nil {
		return err
	}
	tasks = append(tasks, fs.Args()...)
	selected, err := telemetry.Default().Select(tasks)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	l := newLogger(e, cfg)
	ctx, stop := signalContext()
	defer stop()
	// Preview shares the cluster-wide cap with the workers, so that trying
	// it on a busy deployment does not overload the source.
	var source *es.Client
	// With Redis, preview also knows what the source refused before (the
	// workers' memory of it), as a run's errand does.
	var refusals uploader.Refusals
	if cfg.SearchConcurrency > 0 {
		// err is the function's: newClusterSource's error below must reach the check after the if.
		var rt *runtime
		rt, err = openRuntime(cfg, "preview")
		if err != nil {
			return fmt.Errorf("%w (preview obeys the cluster-wide APMTEL_SEARCH_CONCURRENCY held in Redis; set it to 0 to preview without Redis)", err)
		}
		defer rt.Close()
		refusals = newRuns(rt.rdb, cfg)
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
		b, err = previewEnvelope(e, cfg, described, l, b, all.Plugins)
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
	x := newExecutor(cfg, source)
	results := collect.Preview(ctx, x, "preview-"+time.Now().UTC().Format("20060102T150405Z"), tasks, cfg.Indices, parallel)
	names := make([]string, len(tasks))
	for i, t := range tasks {
		names[i] = t.Name
	}
	all, rep := collect.AssembleAll(names, results, nil)
	return all, rep, results
}

// newExecutor is the one executor configuration, shared by workers and preview.
func newExecutor(cfg config.Config, source es.Doer) *collect.Executor {
	return &collect.Executor{Source: source, SearchTimeout: cfg.SearchTimeout, TaskTimeout: cfg.TaskTimeout}
}

// newClusterSource is the source client of every process that collects: the
// cluster-wide semaphore in Redis (APMTEL_SEARCH_CONCURRENCY, 0 = none) is
// its gate, so every attempt of every request, retries included, holds a
// slot and a backoff holds none.
func newClusterSource(cfg config.Config, l zerolog.Logger, rdb redis.UniversalClient) (*es.Client, error) {
	var gate es.Gate
	if cfg.SearchConcurrency > 0 {
		gate = limiter.New(rdb, newRuns(rdb, cfg).Keys(), cfg.SearchConcurrency, limiter.Options{}).Gate
	}
	return newGatedSource(cfg, l, gate)
}

func runCancel(e *env, args []string) error {
	cfg, fs, err := load(e, "cancel", "RUN", args, nil)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &config.UsageError{Err: errors.New("usage: apmtel cancel RUN")}
	}
	id := fs.Arg(0)
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
	fmt.Fprintf(e.stdout, "run %s cancelled: %d running tasks stopped, %d queued tasks dropped, no upload\n", id, c.Stopped, c.Removed)
	return nil
}

func runUpload(e *env, args []string) error {
	cfg, fs, err := load(e, "upload", "RUN", args, nil)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &config.UsageError{Err: errors.New("usage: apmtel upload RUN")}
	}
	id := fs.Arg(0)
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
