package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/hibiken/asynq"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/store"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/jobs"
	"github.com/apmtel/apmtel/scheduler"
	"github.com/apmtel/apmtel/workers"
)

func runRun(e *env, args []string) error {
	var tasks multiFlag
	var wait bool
	var waitTimeout time.Duration
	cfg, fs, err := load(e, "run", "[--task NAME ...] [--wait]", args, func(fs *flag.FlagSet) {
		fs.Var(&tasks, "task", "run only this task (repeatable; default: all)")
		fs.BoolVar(&wait, "wait", false, "show progress until the run is finalized, then a summary; exit 1 if a task failed")
		fs.DurationVar(&waitTimeout, "wait-timeout", 0, "give up waiting after this long (default: the run deadline plus 1m)")
	})
	if err != nil {
		return err
	}
	tasks = append(tasks, fs.Args()...)
	// Reject unknown tasks before touching Redis, so nothing is enqueued.
	if _, err := telemetry.Default().Select(tasks); err != nil {
		return &exitError{code: 2, err: err}
	}
	l := newLogger(e, cfg)
	rdb := newRedis(cfg)
	defer rdb.Close()
	client := asynq.NewClient(redisOpt(cfg))
	defer client.Close()
	st := newStore(rdb, cfg)
	s := &scheduler.Scheduler{Config: cfg, Store: st, Registry: telemetry.Default(), Enqueuer: client, Logger: l}
	ctx, stop := signalContext()
	defer stop()
	id := scheduler.ManualRunID(time.Now())
	if _, err := s.StartRun(ctx, id, "manual", tasks); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, id)
	if !wait {
		return nil
	}
	if waitTimeout == 0 {
		waitTimeout = cfg.RunDeadline + time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	run, err := waitRun(ctx, st, id, e.stderr)
	if err != nil {
		return err
	}
	results, err := st.Results(ctx, id)
	if err != nil {
		return err
	}
	failed := printSummary(e.stdout, run, results)
	if failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d tasks failed", failed, len(run.Tasks))}
	}
	return nil
}

// waitRun polls the run until it is finalized, printing each task's outcome as it arrives.
func waitRun(ctx context.Context, st *store.Store, id string, w io.Writer) (store.Run, error) {
	seen := map[string]bool{}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		run, err := st.GetRun(ctx, id)
		if err != nil {
			return run, err
		}
		results, err := st.Results(ctx, id)
		if err != nil {
			return run, err
		}
		done := 0
		for _, name := range run.Tasks {
			if r, ok := results[name]; ok && r.Final() {
				done++
			}
		}
		for _, name := range run.Tasks {
			r, ok := results[name]
			if !ok || !r.Final() || seen[name] {
				continue
			}
			seen[name] = true
			fmt.Fprintf(w, "[%d/%d] %-24s %-9s %6dms %s\n", len(seen), len(run.Tasks), name, r.Status, r.TookMS, r.Error)
		}
		if run.Status == store.StatusFinalized {
			return run, nil
		}
		select {
		case <-ctx.Done():
			return run, fmt.Errorf("run %s: stopped waiting (%d/%d tasks done, status %s): %w", id, done, len(run.Tasks), run.Status, ctx.Err())
		case <-tick.C:
		}
	}
}

// printSummary prints a table of the run's tasks and returns how many did not succeed.
func printSummary(w io.Writer, run store.Run, results map[string]store.TaskRecord) int {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "TASK\tSTATUS\tTOOK_MS\tATTEMPT\tERROR\n")
	failed := 0
	for _, name := range run.Tasks {
		r := results[name]
		if r.Status != store.TaskOK {
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", name, r.Status, r.TookMS, r.Attempt, r.Error)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "run %s: %s, %d/%d tasks ok, upload %s %s\n", run.ID, run.Status, len(run.Tasks)-failed, len(run.Tasks), run.Upload, run.UploadDetail)
	return failed
}

func runRuns(e *env, args []string) error {
	var limit int
	var asJSON bool
	cfg, _, err := load(e, "runs", "[--limit N]", args, func(fs *flag.FlagSet) {
		fs.IntVar(&limit, "limit", 20, "how many runs")
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	})
	if err != nil {
		return err
	}
	rdb := newRedis(cfg)
	defer rdb.Close()
	runs, err := newStore(rdb, cfg).ListRuns(context.Background(), limit)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(runs)
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "RUN\tTRIGGER\tSTATUS\tCREATED\tTASKS\tFAILED\tUPLOAD\n")
	for _, r := range runs {
		var rep workers.Report
		_ = json.Unmarshal(r.Report, &rep)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", r.ID, r.Trigger, r.Status, r.CreatedAt.Format(time.RFC3339), len(r.Tasks), len(rep.Failed), r.Upload)
	}
	return tw.Flush()
}

func runSnapshot(e *env, args []string) error {
	var runID string
	var report bool
	cfg, _, err := load(e, "snapshot", "[--run ID] [--report]", args, func(fs *flag.FlagSet) {
		fs.StringVar(&runID, "run", "", "run id (default: the latest finalized run)")
		fs.BoolVar(&report, "report", false, "print the run's record (status, tasks, upload) instead of the telemetry object")
	})
	if err != nil {
		return err
	}
	rdb := newRedis(cfg)
	defer rdb.Close()
	st := newStore(rdb, cfg)
	ctx := context.Background()
	if runID == "" {
		runID, _, err = st.Latest(ctx)
		if errors.Is(err, store.ErrNotFound) {
			return errors.New("no finalized run yet")
		}
		if err != nil {
			return err
		}
	}
	if report {
		run, err := st.GetRun(ctx, runID)
		if err != nil {
			return err
		}
		b, _ := json.MarshalIndent(run, "", "  ")
		fmt.Fprintln(e.stdout, string(b))
		return nil
	}
	b, err := st.Snapshot(ctx, runID)
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
	cfg, fs, err := load(e, "preview", "[--task NAME ...] [--envelope]", args, func(fs *flag.FlagSet) {
		fs.Var(&tasks, "task", "run only this task (repeatable; default: all)")
		fs.IntVar(&parallel, "parallel", 4, "tasks run at once")
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
	source, err := newSource(cfg, l)
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	snap, rep, results, err := collectOnce(ctx, cfg, source, selected, max(parallel, 1))
	if err != nil {
		return err
	}
	b, err := json.Marshal(snap)
	if err == nil && envelope {
		b, err = previewEnvelope(ctx, e, cfg, source, l, b)
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
		fmt.Fprintf(e.stderr, "task %s %s: %s\n", name, results[name].Status, results[name].Error)
	}
	if len(rep.Failed) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d tasks failed", len(rep.Failed), len(selected))}
	}
	return nil
}

// collectOnce runs tasks in-process and assembles their telemetry object as
// finalize would (without last good values).
func collectOnce(ctx context.Context, cfg config.Config, source es.Doer, tasks []telemetry.Task, parallel int) (map[string]any, workers.Report, map[string]store.TaskRecord, error) {
	env := telemetry.Env{ES: source, Indices: cfg.Indices, SearchTimeout: cfg.SearchTimeout, Now: time.Now}
	results := Preview(ctx, tasks, env, cfg.TaskTimeout, parallel)
	names := make([]string, len(tasks))
	for i, t := range tasks {
		names[i] = t.Name
	}
	snap, rep, err := workers.Assemble(names, results, nil)
	return snap, rep, results, err
}

// Preview runs tasks in-process, parallel at a time, and returns their records.
func Preview(ctx context.Context, tasks []telemetry.Task, env telemetry.Env, timeout time.Duration, parallel int) map[string]store.TaskRecord {
	var mu sync.Mutex
	out := map[string]store.TaskRecord{}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, t := range tasks {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			tctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			start := time.Now()
			var warnings []string
			tenv := env
			tenv.Warn = func(msg string) { warnings = append(warnings, msg) }
			frag, err := t.Collect(tctx, tenv)
			rec := store.TaskRecord{Warnings: warnings, Task: t.Name, TookMS: time.Since(start).Milliseconds(), Attempt: 1, FinishedAt: time.Now().UTC()}
			switch {
			case err == nil:
				rec.Status = store.TaskOK
				rec.Result, err = json.Marshal(frag)
				if err != nil {
					rec.Status, rec.Error = store.TaskFailed, err.Error()
				}
			case errors.Is(err, context.DeadlineExceeded):
				rec.Status, rec.Error = store.TaskTimeout, err.Error()
			default:
				rec.Status, rec.Error = store.TaskFailed, err.Error()
			}
			mu.Lock()
			out[t.Name] = rec
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func runCancel(e *env, args []string) error {
	cfg, fs, err := load(e, "cancel", "RUN_ID", args, nil)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &config.UsageError{Err: errors.New("usage: apmtel cancel RUN_ID")}
	}
	id := fs.Arg(0)
	rdb := newRedis(cfg)
	defer rdb.Close()
	insp := asynq.NewInspector(redisOpt(cfg))
	defer insp.Close()
	client := asynq.NewClient(redisOpt(cfg))
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := CancelRun(ctx, newStore(rdb, cfg), insp, client, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "run %s cancelled: %d in-flight jobs stopped, queued jobs removed\n", id, n)
	return nil
}

// CancelRun closes a run (later results are dropped), cancels its active
// collect jobs (their contexts end, so their searches stop), deletes its
// queued ones and finalizes it without upload. It returns the number of
// active jobs cancelled.
func CancelRun(ctx context.Context, st *store.Store, insp *asynq.Inspector, client *asynq.Client, id string) (int, error) {
	run, err := st.GetRun(ctx, id)
	if err != nil {
		return 0, err
	}
	if _, err := st.Close(ctx, id, "cancelled", time.Now()); err != nil {
		return 0, err
	}
	active, err := insp.ListActiveTasks(jobs.QueueCollect, asynq.PageSize(1000))
	if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		return 0, err
	}
	n := 0
	for _, t := range active {
		if p, err := jobs.DecodeCollect(t.Payload); err == nil && p.RunID == id {
			if err := insp.CancelProcessing(t.ID); err == nil {
				n++
			}
		}
	}
	for _, name := range run.Tasks {
		// Pending, scheduled or retrying jobs of the run: gone. Completed ones
		// stay as they are (their id still deduplicates).
		tid := jobs.CollectID(id, name)
		if info, err := insp.GetTaskInfo(jobs.QueueCollect, tid); err == nil && info.State != asynq.TaskStateActive && info.State != asynq.TaskStateCompleted {
			_ = insp.DeleteTask(jobs.QueueCollect, tid)
		}
	}
	fin, err := jobs.NewFinalize(jobs.RunPayload{RunID: id, Reason: "cancelled"}, time.Time{})
	if err != nil {
		return n, err
	}
	if _, err := client.EnqueueContext(ctx, fin); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return n, fmt.Errorf("enqueue finalize: %w", err)
	}
	return n, nil
}
