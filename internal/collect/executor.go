package collect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/apmtel/apmtel/internal/clock"
	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/limiter"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/telemetry"
)

// Executor runs one telemetry task against the source cluster.
type Executor struct {
	// Source reaches the cluster holding the APM data.
	Source es.Doer
	// SearchTimeout bounds one request; TaskTimeout one attempt of a task.
	SearchTimeout time.Duration
	TaskTimeout   time.Duration
	// Now is the clock (the wall clock when nil).
	Now clock.Clock
}

// Job is one task of one run.
type Job struct {
	RunID   string
	Task    telemetry.Task
	Indices config.Indices
	// RunDeadline, when set, ends the task with the run.
	RunDeadline time.Time
}

// Outcome is what running a task gave.
type Outcome struct {
	// Status is ok, failed or timeout.
	Status run.TaskStatus
	// Result is the task's fragment as JSON when Status is ok.
	Result json.RawMessage
	// Err is the task's error, with the deadline named when one fired.
	Err error
	// Deadline names the deadline that ended the task.
	Deadline run.Deadline
	// Permanent errors cannot be fixed by retrying (a 4xx answer, an
	// unencodable result).
	Permanent bool
	// Interrupted: the caller's context ended (shutdown, cancel) before the
	// task did; nothing should be recorded, the job runs again elsewhere.
	Interrupted bool
	Warnings    []string
	Took        time.Duration
	// Requests is what the task's requests spent (see Meter).
	Requests run.RequestStats
}

// Record is the one translation of an outcome into its attempt's record:
// rec carries who and when (task, attempt, worker, queued and started
// times) and gets the outcome's status, took, warnings, deadline, result
// and error, finished at finished. The worker and preview differ on
// purpose, and say how through the arguments:
//   - retryable: a worker whose job has retries left records a failure that
//     is not permanent as "retrying" (asynq runs it again); preview has a
//     single attempt, so its failures are final.
//   - redact removes secrets from the error text a worker stores in Redis;
//     preview prints to its own operator (nil: the text as is).
//   - an interrupted outcome (Ctrl-C in preview) is "cancelled"; a worker
//     never records one: the job goes back to the queue instead.
func (o Outcome) Record(rec run.TaskRecord, finished time.Time, retryable bool, redact func(string) string) run.TaskRecord {
	rec.Status, rec.TookMS, rec.Warnings, rec.FinishedAt = o.Status, o.Took.Milliseconds(), o.Warnings, finished.UTC()
	rec.Deadline, rec.Result, rec.RequestStats = o.Deadline, o.Result, o.Requests
	if o.Err != nil {
		rec.Error = o.Err.Error()
		if redact != nil {
			rec.Error = redact(rec.Error)
		}
		if !o.Permanent && retryable {
			rec.Status = run.TaskRetrying
		}
	}
	if o.Interrupted {
		rec.Status = run.TaskCancelled
	}
	return rec
}

// OpaqueID labels a task's requests (X-Opaque-Id), so the cluster's tasks
// API and slow logs show which run and task a search belongs to.
func OpaqueID(runID, task string) string { return "apmtel run=" + runID + " task=" + task }

// Doer is the source labelled with opaqueID. The cluster-wide cap is the
// source client's own gate (es.ClientParams.Gate), taken per attempt.
func (x *Executor) Doer(opaqueID string) es.Doer { return es.WithOpaqueID(x.Source, opaqueID) }

// deadlineError is the cause a deadline of ours cancels a task with.
type deadlineError struct {
	which run.Deadline
	after time.Duration
	env   string
}

func (e *deadlineError) Error() string {
	return fmt.Sprintf("%s after %s (%s)", e.which, e.after, e.env)
}

func (e *deadlineError) Is(target error) bool { return target == context.DeadlineExceeded }

func (x *Executor) now() time.Time { return x.Now.Now() }

// Run executes j. It never panics on a task's error; a panic in a task's
// code is a failed, permanent outcome.
func (x *Executor) Run(ctx context.Context, j Job) (out Outcome) {
	start := x.now()
	// The task's requests queue for the cluster-wide cap by the task's age.
	tctx, cancel := context.WithTimeoutCause(limiter.InTaskOrder(ctx), x.TaskTimeout,
		&deadlineError{which: run.DeadlineTask, after: x.TaskTimeout, env: "APMTEL_TASK_TIMEOUT"})
	defer cancel()
	if !j.RunDeadline.IsZero() {
		var cancelRun context.CancelFunc
		tctx, cancelRun = context.WithDeadlineCause(tctx, j.RunDeadline,
			&deadlineError{which: run.DeadlineRun, after: j.RunDeadline.Sub(start).Round(time.Millisecond), env: "APMTEL_RUN_DEADLINE"})
		defer cancelRun()
	}
	meter := NewMeter(x.Now)
	tctx = WithMeter(tctx, meter)
	source := x.Doer(OpaqueID(j.RunID, j.Task.Name))
	var mu sync.Mutex
	var warnings []string
	env := telemetry.Env{
		ES: source, Indices: j.Indices, SearchTimeout: x.SearchTimeout, Now: x.now,
		// Tasks fan out their requests; a warning may come from any goroutine.
		Warn: func(msg string) { mu.Lock(); warnings = append(warnings, msg); mu.Unlock() },
	}
	defer func() {
		if p := recover(); p != nil {
			out = Outcome{Status: run.TaskFailed, Err: fmt.Errorf("task %s panicked: %v", j.Task.Name, p), Permanent: true}
		}
		mu.Lock()
		out.Warnings = append([]string(nil), warnings...)
		mu.Unlock()
		out.Took = x.now().Sub(start)
		out.Requests = meter.Stats()
	}()
	frag, err := j.Task.Collect(tctx, env)
	if err == nil {
		b, merr := json.Marshal(frag)
		if merr != nil {
			return Outcome{Status: run.TaskFailed, Err: fmt.Errorf("encode result: %w", merr), Permanent: true}
		}
		return Outcome{Status: run.TaskOK, Result: b}
	}
	return classify(ctx, tctx, err, x.SearchTimeout)
}

// classify names what ended a task that returned err. ctx is the caller's
// context, tctx the task's own.
func classify(ctx, tctx context.Context, err error, searchTimeout time.Duration) Outcome {
	if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return Outcome{Status: run.TaskFailed, Err: fmt.Errorf("interrupted: %w", err), Interrupted: true, Deadline: run.DeadlineCancel}
	}
	var de *deadlineError
	switch {
	case errors.As(context.Cause(tctx), &de) && errors.Is(err, context.DeadlineExceeded):
		return Outcome{Status: run.TaskTimeout, Deadline: de.which, Err: fmt.Errorf("%s: %w", de, err)}
	case es.IsRequestTimeout(err):
		return Outcome{Status: run.TaskTimeout, Deadline: run.DeadlineSearch,
			Err: fmt.Errorf("search timeout after %s (APMTEL_SEARCH_TIMEOUT): %w", searchTimeout, err)}
	case errors.Is(err, context.DeadlineExceeded):
		// The job's own deadline (asynq's timeout) ended it.
		return Outcome{Status: run.TaskTimeout, Deadline: run.DeadlineTask, Err: fmt.Errorf("job deadline: %w", err)}
	}
	return Outcome{Status: run.TaskFailed, Err: err, Permanent: es.IsPermanent(err)}
}
