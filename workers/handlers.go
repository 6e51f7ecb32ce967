package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/backoff"
	"github.com/apmtel/apmtel/internal/clock"
	"github.com/apmtel/apmtel/internal/collect"
	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/failpoint"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/logs"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/internal/uploader"
	"github.com/apmtel/apmtel/jobs"
)

// Deps are the handlers' collaborators.
type Deps struct {
	Config config.Config
	// Clusters gives the run store and the executor of a job's source
	// cluster, by the source name the job carries.
	Clusters Clusters
	Registry *telemetry.Registry
	// Sink receives payloads (telemetry cluster or files).
	Sink     uploader.Sink
	Enqueuer jobs.Enqueuer
	// Jobs removes the deadline finalize of a run sealed early; nil leaves
	// it scheduled (it then runs at the deadline and finds nothing to do).
	Jobs   JobRemover
	Logger zerolog.Logger
	// Now is the clock (the wall clock when nil) of the handlers and finalize.
	Now clock.Clock
	// Backoff returns the backoff state of a source cluster, where an ended
	// run is counted (RunFailure); nil in a single-cluster deployment, which
	// keeps no such state.
	Backoff func(source string) *backoff.Store
}

// Handlers implements the job handlers: each decodes its payload, calls a
// run transition (internal/run, through internal/collect) and enqueues what
// follows.
type Handlers struct {
	d      Deps
	worker string
}

// NewHandlers returns handlers over d.
func NewHandlers(d Deps) *Handlers {
	host, _ := os.Hostname()
	return &Handlers{d: d, worker: fmt.Sprintf("%s/%d", host, os.Getpid())}
}

// finalizer closes, assembles and seals the runs of a cluster.
func (h *Handlers) finalizer(c Cluster) *collect.Finalizer {
	return &collect.Finalizer{Runs: c.Runs, Registry: h.d.Registry, OptIn: h.d.Config.OptIn, Logger: logs.Named(h.d.Logger, logs.Finalize), Now: h.d.Now}
}

// NewMux returns the handler of a worker: every job type routed, and an
// unknown type failed permanently (asynq's own mux would retry it).
func NewMux(h *Handlers) asynq.Handler {
	mux := asynq.NewServeMux()
	mux.Use(h.logging)
	mux.HandleFunc(jobs.TypeCollect, h.Collect)
	mux.HandleFunc(jobs.TypeFinalize, h.Finalize)
	mux.HandleFunc(jobs.TypeUpload, h.Upload)
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
		start := h.d.Now.Now()
		err := next.ProcessTask(ctx, t)
		id, _ := asynq.GetTaskID(ctx)
		retry, _ := asynq.GetRetryCount(ctx)
		l := logs.Named(h.d.Logger, componentOf(t.Type()))
		ev := l.Info()
		if err != nil {
			ev = l.Warn().Err(err).Bool("retry", !errors.Is(err, asynq.SkipRetry))
		}
		ev.Str("job", t.Type()).Str("job_id", id).Str("run_id", jl.runID).Str("task", jl.task).
			Int("attempt", retry+1).Int64("took_ms", h.d.Now.Now().Sub(start).Milliseconds()).Msg("job done")
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

func skip(err error) error { return fmt.Errorf("%w: %w", err, asynq.SkipRetry) }

// cluster returns the Cluster of a job's source.
func (h *Handlers) cluster(source string) (Cluster, error) {
	return h.d.Clusters.Cluster(keys.SourceOrDefault(source))
}

// skipUnlessStopping makes a Clusters error final, except a stopping
// worker's: that job goes back to the queue.
func skipUnlessStopping(err error) error {
	if errors.Is(err, ErrStopping) {
		return err
	}
	return skip(err)
}

// Collect runs one telemetry task of a run and records its outcome.
func (h *Handlers) Collect(ctx context.Context, t *asynq.Task) error {
	p, err := jobs.DecodeCollect(t.Payload())
	if err != nil {
		return skip(fmt.Errorf("collect: %w", err))
	}
	note(ctx, p.RunID, p.Task)
	l := logs.Named(h.d.Logger, logs.Collect).With().Str("run_id", p.RunID).Str("task", p.Task).Logger()
	c, err := h.cluster(p.Source)
	if errors.Is(err, ErrNotConfigured) && c.Runs != nil {
		return h.notConfigured(ctx, c.Runs, p, err)
	}
	if err != nil {
		return skipUnlessStopping(fmt.Errorf("task %s: %w", p.Task, err))
	}
	st := c.Runs
	r, err := st.Get(ctx, p.RunID)
	if collect.IsGone(err) {
		l.Info().Msg("run no longer exists (trimmed or expired); job dropped")
		return nil
	}
	if err != nil {
		return fmt.Errorf("task %s: %w", p.Task, err)
	}
	if r.Status != run.StatusOpen {
		l.Info().Str("status", string(r.Status)).Msg("run no longer accepts results; job dropped")
		return nil
	}
	retry, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	task, known := h.d.Registry.Lookup(p.Task)
	if !known || !slices.Contains(r.Tasks, p.Task) {
		rec := run.TaskRecord{Task: p.Task, Status: run.TaskFailed, Attempt: retry + 1, Worker: h.worker,
			Error: "unknown telemetry task for this run", FinishedAt: h.d.Now.Now().UTC()}
		if _, err := h.record(ctx, st, r, rec); err != nil {
			return err
		}
		return skip(fmt.Errorf("task %s: not a task of run %s", p.Task, p.RunID))
	}
	var so run.StartOutcome
	err = bridge(ctx, func() (err error) {
		so, err = st.Start(ctx, r, p.Task, retry+1, maxRetry+1, h.worker, h.d.Now.Now())
		return err
	})
	if err != nil {
		return fmt.Errorf("task %s: %w", p.Task, err)
	}
	switch {
	case so.AlreadyFinal:
		// A re-delivery of a task that has its result. If it was the last one,
		// the worker that recorded it may have died before enqueueing finalize.
		l.Info().Int("remaining", so.Remaining).Msg("task already has a final result; job dropped")
		if so.Remaining == 0 {
			return h.enqueueFinalize(ctx, r, jobs.ReasonComplete)
		}
		return nil
	case so.NotOpen:
		l.Info().Msg("run closed before the task started; job dropped")
		return nil
	}
	// One job per run reads the source's identity (the first task's), so a
	// run adds one set of requests, under the cap, not one per task. It runs
	// beside the task, so the task's took is its own, and is done before the
	// task is recorded, so the identity is stored before the run can seal.
	// Its requests go at once, so it ends before the task's own do: it holds
	// the job for nothing (measured against the other placements in
	// docs/critical-path.md).
	described := make(chan struct{})
	if len(r.SourceInfo) == 0 && p.Task == r.Tasks[0] {
		go func() { defer close(described); h.captureSource(ctx, c, r) }()
	} else {
		close(described)
	}
	out := c.Executor.Run(ctx, collect.Job{RunID: r.ID, Task: task, Indices: r.Indices, RunDeadline: r.Deadline})
	<-described
	if out.Interrupted {
		// Shutdown or cancel: record nothing, so the job goes back to the
		// queue and runs again elsewhere (or finds its run cancelled).
		return fmt.Errorf("task %s: %w", p.Task, out.Err)
	}
	rec := out.Record(so.Record, h.d.Now.Now(), retry < maxRetry, func(s string) string { return redact(s, h.d.Config.Secrets()) })
	if _, err := h.record(ctx, st, r, rec); err != nil {
		return err
	}
	if out.Err == nil {
		return nil
	}
	err = fmt.Errorf("task %s: %w", p.Task, out.Err)
	if out.Permanent {
		return skip(err)
	}
	return err
}

// notConfigured ends a task of a cluster that left the clusters file or
// was disabled: recorded as failed (no retry), so its run finalizes with
// what it has; a run already gone or closed is left alone.
func (h *Handlers) notConfigured(ctx context.Context, st *run.Store, p jobs.CollectPayload, why error) error {
	l := logs.Named(h.d.Logger, logs.Collect).With().Str("run_id", p.RunID).Str("task", p.Task).Str("cluster", p.Source).Logger()
	r, err := st.Get(ctx, p.RunID)
	if collect.IsGone(err) {
		l.Info().Msg("run no longer exists; job of an unconfigured cluster dropped")
		return nil
	}
	if err != nil {
		return fmt.Errorf("task %s: %w", p.Task, err)
	}
	if r.Status != run.StatusOpen || !slices.Contains(r.Tasks, p.Task) {
		return nil
	}
	retry, _ := asynq.GetRetryCount(ctx)
	rec := run.TaskRecord{Task: p.Task, Status: run.TaskFailed, Attempt: retry + 1, Worker: h.worker,
		Error: why.Error(), FinishedAt: h.d.Now.Now().UTC()}
	if _, err := h.record(ctx, st, r, rec); err != nil {
		return err
	}
	l.Info().Str("reason", why.Error()).Msg("job of a cluster no longer collected ended")
	return nil
}

// captureSource stores the source cluster's identity with the run, once, so
// that its upload never needs the source, and records the errand as the
// run's own entry (running, then ok or failed, with its requests). A
// failure is not the task's: the upload tries again.
func (h *Handlers) captureSource(ctx context.Context, c Cluster, r run.Run) {
	st := c.Runs
	l := logs.Named(h.d.Logger, logs.Collect).With().Str("run_id", r.ID).Str("errand", run.ErrandSourceIdentity).Logger()
	_ = st.RecordErrand(ctx, r.ID, run.Errand{Name: run.ErrandSourceIdentity, Status: run.TaskRunning, Worker: h.worker,
		StartedAt: h.d.Now.Now().UTC()}, nil)
	d := h.describer(c, r)
	d.Refusals = st
	var src uploader.Source
	e := c.Executor.Errand(ctx, r.ID, run.ErrandSourceIdentity, h.worker, func(ctx context.Context, doer es.Doer) (err error) {
		src, err = d.Describe(ctx, doer, h.d.Config.SearchTimeout)
		return err
	})
	var info []byte
	if e.Status == run.TaskOK {
		info, _ = json.Marshal(src)
	} else {
		e.Error = redact(e.Error, h.d.Config.Secrets())
		l.Warn().Str("error", e.Error).Msg("cannot read the source cluster's identity yet; the upload tries again")
	}
	if err := st.RecordErrand(ctx, r.ID, e, info); err != nil {
		l.Warn().Err(err).Msg("cannot store the source cluster's identity")
	}
	l.Info().Int64("took_ms", e.TookMS).Int("requests", e.Requests).Msg("errand done")
}

// bridgeWindow is how long a worker keeps retrying a Redis write that
// failed: longer than a Sentinel failover (about 3 s measured) or a Redis
// restart, so that a task whose search finished during the outage is still
// recorded instead of waiting for asynq's lease recovery (one to two
// minutes). Every write is idempotent, so a repeat is harmless.
const bridgeWindow = 20 * time.Second

// bridge runs f until it succeeds, ctx ends, bridgeWindow passes, or it
// fails for a reason other than Redis being unreachable.
func bridge(ctx context.Context, f func() error) error {
	deadline := time.Now().Add(bridgeWindow)
	wait := 100 * time.Millisecond
	for {
		err := f()
		if err == nil || !transient(err) || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// transient reports whether err says Redis could not be reached or is not
// the master (yet): a connection error or timeout, a read-only replica, a
// server loading its data or without a master.
func transient(err error) bool {
	var ne net.Error
	switch {
	case errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, redis.ErrPoolTimeout):
		return true
	case redis.IsReadOnlyError(err), redis.IsLoadingError(err), redis.IsMasterDownError(err), redis.IsTryAgainError(err),
		redis.IsClusterDownError(err):
		return true
	}
	// go-redis reports Sentinels that cannot be reached in a plain error:
	// its text is all there is to go by.
	return strings.Contains(err.Error(), "sentinels specified in configuration are unreachable")
}

// describer reads the source's envelope facts with the run's Kibana index.
func (h *Handlers) describer(c Cluster, r run.Run) uploader.Describer {
	return uploader.Describer{KibanaIndex: r.Indices.Kibana, KibanaVersion: c.KibanaVersion}
}

// record stores rec and, when no task of the run is left pending, enqueues
// finalize: whoever sees the run complete enqueues it (the job id
// deduplicates), so a worker that dies right after the completing record
// delays nothing but the re-delivery.
func (h *Handlers) record(ctx context.Context, st *run.Store, r run.Run, rec run.TaskRecord) (run.RecordOutcome, error) {
	var o run.RecordOutcome
	err := bridge(ctx, func() (err error) { o, err = st.Record(ctx, r.ID, rec); return err })
	if err != nil {
		return o, fmt.Errorf("task %s: %w", rec.Task, err)
	}
	l := logs.Named(h.d.Logger, logs.Collect).With().Str("run_id", r.ID).Str("task", rec.Task).Logger()
	switch {
	case o.Duplicate:
		l.Info().Msg("task already has a final result; this one is dropped")
	case o.NotOpen:
		l.Info().Msg("run closed before the task finished; result dropped")
	}
	if o.Completed {
		failpoint.Hit(failpoint.AfterCompletingRecord)
	}
	if o.Completed || (o.Duplicate && o.Remaining == 0) {
		if err := h.enqueueFinalize(ctx, r, jobs.ReasonComplete); err != nil {
			return o, err
		}
	}
	return o, nil
}

// enqueueFinalize is the one place a worker asks for a finalize.
func (h *Handlers) enqueueFinalize(ctx context.Context, r run.Run, reason string) error {
	t, err := jobs.NewFinalize(jobs.RunPayload{Source: r.Source, RunID: r.ID, Reason: reason}, time.Time{}, h.d.Config.Timing())
	if err := jobs.Enqueue(ctx, h.d.Enqueuer, t, err); err != nil {
		return fmt.Errorf("run %s: enqueue finalize: %w", r.ID, err)
	}
	return nil
}

// Finalize closes, assembles and seals a run, then enqueues its upload.
func (h *Handlers) Finalize(ctx context.Context, t *asynq.Task) error {
	p, err := jobs.DecodeRun(t.Payload())
	if err != nil {
		return skip(fmt.Errorf("finalize: %w", err))
	}
	note(ctx, p.RunID, "")
	l := logs.Named(h.d.Logger, logs.Finalize).With().Str("run_id", p.RunID).Logger()
	// A cluster no longer collected still finalizes and uploads the runs it
	// has: only Redis and the sink are needed.
	c, err := h.cluster(p.Source)
	if err != nil && (!errors.Is(err, ErrNotConfigured) || c.Runs == nil) {
		return skipUnlessStopping(fmt.Errorf("finalize: %w", err))
	}
	f, err := h.finalizer(c).Finalize(ctx, p.RunID, run.CloseReason(p.Reason))
	if collect.IsGone(err) {
		// The run left the history before its deadline job ran: nothing to do.
		l.Debug().Msg("run no longer exists (trimmed or expired); finalize has nothing to do")
		return nil
	}
	if err != nil {
		return fmt.Errorf("finalize: %w", err)
	}
	h.dropDeadlineJob(ctx, f.Run, p.Reason)
	// Counted by the finalize that sealed the run; a failed upload is
	// counted when it fails for good (the same run counts once).
	h.countRun(ctx, f.Run, f.SealedNow)
	if !f.Upload {
		return nil
	}
	up, err := jobs.NewUpload(jobs.RunPayload{Source: f.Run.Source, RunID: f.Run.ID}, 0, h.d.Config.Timing())
	if err := jobs.Enqueue(ctx, h.d.Enqueuer, up, err); err != nil {
		return fmt.Errorf("finalize: enqueue upload: %w", err)
	}
	return nil
}

// Upload ships a sealed run's payload. A failed attempt is recorded with the
// run (retrying n/m and the error); the last one — attempts or the
// APMTEL_UPLOAD_RETRY_WINDOW spent, or a permanent error — marks the upload
// failed, which is final until `apmtel upload RUN`.
func (h *Handlers) Upload(ctx context.Context, t *asynq.Task) error {
	p, err := jobs.DecodeRun(t.Payload())
	if err != nil {
		return skip(fmt.Errorf("upload: %w", err))
	}
	note(ctx, p.RunID, "")
	l := logs.Named(h.d.Logger, logs.Upload).With().Str("run_id", p.RunID).Logger()
	// A cluster no longer collected still finalizes and uploads the runs it
	// has: only Redis and the sink are needed.
	c, err := h.cluster(p.Source)
	if err != nil && (!errors.Is(err, ErrNotConfigured) || c.Runs == nil) {
		return skipUnlessStopping(fmt.Errorf("upload: %w", err))
	}
	st := c.Runs
	r, err := st.Get(ctx, p.RunID)
	if collect.IsGone(err) {
		l.Info().Msg("run no longer exists; nothing to upload")
		return nil
	}
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	switch {
	case r.Status == run.StatusCancelled:
		return nil
	case r.Status != run.StatusSealed:
		return fmt.Errorf("upload: run %s is %s, not sealed yet", r.ID, r.Status)
	case r.Upload.State.Ended():
		l.Info().Str("upload", r.Upload.String()).Msg("upload already ended; job dropped")
		return nil
	}
	now := h.d.Now.Now()
	if why := r.SkipReason(h.d.Config.OptIn, nil); why != "" {
		if why == run.SkipOptOut {
			l.Warn().Msg("telemetry opt-in is off (APMTEL_OPT_IN=false): payload collected but not sent")
		}
		return ignoreState(st.UploadSkipped(ctx, r.ID, why, now))
	}
	retry, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	attempt, maxAttempts := retry+1, maxRetry+1
	d, err := h.deliver(ctx, c, r)
	if err == nil {
		ev := l.Info().Str("to", d.Where).Int("attempt", attempt)
		where := d.Where
		if d.Note != "" {
			ev = ev.Str("note", d.Note)
			where += " (" + d.Note + ")"
		}
		ev.Msg("payload " + string(d.State))
		// Delivered at the end of the delivery, so a run's breakdown counts
		// the upload's own time.
		return ignoreState(st.UploadDelivered(ctx, r.ID, d.State, attempt, where, h.d.Now.Now()))
	}
	msg := redact(err.Error(), h.d.Config.Secrets())
	since := r.UploadSince()
	final, why := UploadRetry{Window: h.d.Config.UploadRetryWindow}.Decide(UploadAttempt{Attempt: attempt, MaxAttempts: maxAttempts,
		Since: since, Now: now, Permanent: errors.Is(err, errPermanent) || es.IsPermanent(err)})
	if final {
		l.Error().Str("error", msg).Int("attempt", attempt).Str("why", why).
			Msg("upload failed for good; `apmtel upload " + r.ID + "` sends it again")
		if serr := st.UploadFailed(ctx, r.ID, attempt, maxAttempts, why+": "+msg, now); serr != nil && !isState(serr) {
			return serr
		}
		if r2, gerr := st.Get(ctx, r.ID); gerr == nil {
			h.countRun(ctx, r2, true)
		}
		return skip(fmt.Errorf("upload: %s", msg))
	}
	if serr := st.UploadRetrying(ctx, r.ID, attempt, maxAttempts, msg, now); serr != nil && !isState(serr) {
		return serr
	}
	return fmt.Errorf("upload: %s", msg)
}

var errPermanent = errors.New("permanent")

// deliver builds the run's document (uploader.RunDocument) and puts it
// into the sink, which says which state that reached.
func (h *Handlers) deliver(ctx context.Context, c Cluster, r run.Run) (uploader.Delivery, error) {
	st := c.Runs
	if len(r.SourceInfo) == 0 {
		// No job of the run could read it; the source is needed now.
		if c.Executor == nil {
			return uploader.Delivery{}, fmt.Errorf("%w: source cluster identity unknown and the cluster is no longer collected", errPermanent)
		}
		src, err := h.describer(c, r).Describe(ctx, c.Executor.Doer(collect.OpaqueID(r.ID, "describe")), h.d.Config.SearchTimeout)
		if err != nil {
			return uploader.Delivery{}, fmt.Errorf("source cluster identity: %w", err)
		}
		b, err := json.Marshal(src)
		if err != nil {
			return uploader.Delivery{}, fmt.Errorf("%w: source cluster identity: %w", errPermanent, err)
		}
		if err := st.SetSourceInfo(ctx, r.ID, b); err != nil {
			return uploader.Delivery{}, err
		}
		// Another job may have stored one first: the stored one is the run's.
		if r, err = st.Get(ctx, r.ID); err != nil {
			return uploader.Delivery{}, err
		}
	}
	id, env, err := uploader.RunDocument(ctx, st, r)
	if errors.Is(err, uploader.ErrUnbuildable) {
		return uploader.Delivery{}, fmt.Errorf("%w: %w", errPermanent, err)
	}
	if err != nil {
		return uploader.Delivery{}, err
	}
	return h.d.Sink.Put(ctx, id, env)
}

func isState(err error) bool {
	var se *run.StateError
	return errors.As(err, &se)
}

// ignoreState drops a refused upload transition: another job (a re-send, or
// a duplicate delivery) ended the upload first.
func ignoreState(err error) error {
	if isState(err) {
		return nil
	}
	return err
}

// redact removes secret values from text stored in Redis or logged.
func redact(s string, secrets []string) string {
	for _, v := range secrets {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}
