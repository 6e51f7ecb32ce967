package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/limiter"
	"github.com/apmtel/apmtel/internal/logs"
	"github.com/apmtel/apmtel/internal/store"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/internal/uploader"
	"github.com/apmtel/apmtel/jobs"
)

// Enqueuer is the part of asynq.Client the handlers use.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Deps are the handlers' collaborators.
type Deps struct {
	Config   config.Config
	Store    *store.Store
	Registry *telemetry.Registry
	// Source reaches the cluster holding the APM data.
	Source es.Doer
	// Limiter caps concurrent requests to the source across all workers; nil: no cap.
	Limiter *limiter.Semaphore
	// Sink receives payloads (telemetry cluster or files).
	Sink     uploader.Sink
	Enqueuer Enqueuer
	Logger   zerolog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Handlers implements the job handlers.
type Handlers struct {
	d      Deps
	worker string
}

// NewHandlers returns handlers over d.
func NewHandlers(d Deps) *Handlers {
	if d.Now == nil {
		d.Now = time.Now
	}
	host, _ := os.Hostname()
	return &Handlers{d: d, worker: fmt.Sprintf("%s/%d", host, os.Getpid())}
}

// Register routes every job type to its handler.
func Register(mux *asynq.ServeMux, h *Handlers) {
	mux.Use(h.logging)
	mux.HandleFunc(jobs.TypeCollect, h.Collect)
	mux.HandleFunc(jobs.TypeFinalize, h.Finalize)
	mux.HandleFunc(jobs.TypeUpload, h.Upload)
}

// NewMux returns the handler of a worker: every job type routed, and an
// unknown type failed permanently (asynq's own mux would retry it).
func NewMux(h *Handlers) asynq.Handler {
	mux := asynq.NewServeMux()
	Register(mux, h)
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		switch t.Type() {
		case jobs.TypeCollect, jobs.TypeFinalize, jobs.TypeUpload:
			return mux.ProcessTask(ctx, t)
		}
		l := logs.Named(h.d.Logger, logs.Worker)
		l.Error().Str("job", t.Type()).Msg("unknown job type; archived")
		return skip(fmt.Errorf("unknown job type %q", t.Type()))
	})
}

type ctxKey struct{}

type jobLog struct {
	runID, task string
}

// logging logs every job with run_id, task and took_ms.
func (h *Handlers) logging(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		jl := &jobLog{}
		ctx = context.WithValue(ctx, ctxKey{}, jl)
		start := h.d.Now()
		err := next.ProcessTask(ctx, t)
		id, _ := asynq.GetTaskID(ctx)
		retry, _ := asynq.GetRetryCount(ctx)
		l := logs.Named(h.d.Logger, componentOf(t.Type()))
		ev := l.Info()
		if err != nil {
			ev = l.Warn().Err(err).Bool("retry", !errors.Is(err, asynq.SkipRetry))
		}
		ev.Str("job", t.Type()).Str("job_id", id).Str("run_id", jl.runID).Str("task", jl.task).
			Int("attempt", retry+1).Int64("took_ms", h.d.Now().Sub(start).Milliseconds()).Msg("job done")
		return err
	})
}

func componentOf(typ string) string {
	switch typ {
	case jobs.TypeCollect:
		return logs.Collect
	case jobs.TypeFinalize:
		return logs.Finalize
	case jobs.TypeUpload:
		return logs.Upload
	}
	return logs.Worker
}

func note(ctx context.Context, runID, task string) {
	if jl, ok := ctx.Value(ctxKey{}).(*jobLog); ok {
		jl.runID, jl.task = runID, task
	}
}

// OpaqueID labels a task's requests (X-Opaque-Id), so the cluster's tasks
// API shows which run and task a search belongs to.
func OpaqueID(runID, task string) string { return "apmtel run=" + runID + " task=" + task }

func skip(err error) error { return fmt.Errorf("%w: %w", err, asynq.SkipRetry) }

// Collect runs one telemetry task of a run and records its outcome.
func (h *Handlers) Collect(ctx context.Context, t *asynq.Task) error {
	p, err := jobs.DecodeCollect(t.Payload())
	if err != nil {
		return skip(fmt.Errorf("collect: %w", err))
	}
	note(ctx, p.RunID, p.Task)
	run, err := h.d.Store.GetRun(ctx, p.RunID)
	if errors.Is(err, store.ErrNotFound) {
		return skip(fmt.Errorf("task %s: %w", p.Task, err))
	}
	if err != nil {
		return fmt.Errorf("task %s: %w", p.Task, err)
	}
	if run.Status != store.StatusRunning {
		l := logs.Named(h.d.Logger, logs.Collect)
		l.Info().Str("run_id", p.RunID).Str("task", p.Task).Str("status", run.Status).
			Msg("run no longer accepts results; job dropped")
		return nil
	}
	attempt, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	rec := store.TaskRecord{Task: p.Task, Attempt: attempt + 1, Worker: h.worker}

	task, ok := h.d.Registry.Lookup(p.Task)
	if !ok || !slices.Contains(run.Tasks, p.Task) {
		rec.Status, rec.Error, rec.FinishedAt = store.TaskFailed, "unknown telemetry task for this run", h.d.Now().UTC()
		if _, err := h.record(ctx, run, rec); err != nil {
			return err
		}
		return skip(fmt.Errorf("task %s: not a task of run %s", p.Task, p.RunID))
	}

	tctx, cancel := context.WithTimeout(ctx, h.d.Config.TaskTimeout)
	defer cancel()
	start := h.d.Now()
	var warnings []string
	source := es.WithOpaqueID(h.d.Source, OpaqueID(p.RunID, p.Task))
	if h.d.Limiter != nil {
		source = h.d.Limiter.Doer(source)
	}
	frag, runErr := task.Collect(tctx, telemetry.Env{
		ES: source, Indices: run.Indices, SearchTimeout: h.d.Config.SearchTimeout, Now: h.d.Now,
		Warn: func(msg string) { warnings = append(warnings, msg) },
	})
	rec.Warnings = warnings
	rec.TookMS = h.d.Now().Sub(start).Milliseconds()
	rec.FinishedAt = h.d.Now().UTC()
	if runErr != nil && ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// The worker is shutting down or the job was cancelled: record nothing,
		// so the job goes back to the queue and runs again elsewhere.
		return fmt.Errorf("task %s: interrupted: %w", p.Task, runErr)
	}
	permanent := false
	switch {
	case runErr == nil:
		b, err := json.Marshal(frag)
		if err != nil {
			runErr, permanent = fmt.Errorf("encode result: %w", err), true
			rec.Status, rec.Error = store.TaskFailed, runErr.Error()
			break
		}
		rec.Status, rec.Result = store.TaskOK, b
	case errors.Is(runErr, context.DeadlineExceeded):
		rec.Status, rec.Error = store.TaskTimeout, fmt.Sprintf("timed out after %s: %v", h.d.Config.TaskTimeout, runErr)
	default:
		permanent = es.IsPermanent(runErr)
		rec.Status, rec.Error = store.TaskFailed, runErr.Error()
	}
	if runErr != nil && !permanent && attempt < maxRetry {
		rec.Status = store.TaskRetrying
	}
	if _, err := h.record(ctx, run, rec); err != nil {
		return err
	}
	if runErr == nil {
		return nil
	}
	err = fmt.Errorf("task %s: %w", p.Task, runErr)
	if permanent {
		return skip(err)
	}
	return err
}

// record stores rec and, for the call that completes the run, enqueues finalize.
func (h *Handlers) record(ctx context.Context, run store.Run, rec store.TaskRecord) (store.RecordOutcome, error) {
	o, err := h.d.Store.Record(ctx, run.ID, rec)
	if err != nil {
		return o, fmt.Errorf("task %s: %w", rec.Task, err)
	}
	l := logs.Named(h.d.Logger, logs.Collect)
	switch {
	case o.Duplicate:
		l.Info().Str("run_id", run.ID).Str("task", rec.Task).Msg("task already has a final result; this one is dropped")
	case o.RunNotRunning:
		l.Info().Str("run_id", run.ID).Str("task", rec.Task).Msg("run closed before the task finished; result dropped")
	}
	if o.Completed {
		if err := h.enqueue(ctx, func() (*asynq.Task, error) {
			return jobs.NewFinalize(jobs.RunPayload{RunID: run.ID, Reason: "complete"}, time.Time{})
		}); err != nil {
			// The deadline finalize still covers the run; retrying this job would
			// find the task final and not enqueue again, so say it loudly.
			l.Error().Err(err).Str("run_id", run.ID).Msg("enqueue finalize failed; the run finalizes at its deadline")
		}
	}
	return o, nil
}

// enqueue builds and enqueues a job; an id conflict means it is already
// there, which is success for these idempotent jobs.
func (h *Handlers) enqueue(ctx context.Context, build func() (*asynq.Task, error)) error {
	t, err := build()
	if err != nil {
		return err
	}
	_, err = h.d.Enqueuer.EnqueueContext(ctx, t)
	if errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
		return nil
	}
	return err
}
