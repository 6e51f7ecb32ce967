package workers

import (
	"context"
	"errors"

	"github.com/hibiken/asynq"

	"github.com/apmtel/apmtel/internal/logs"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/jobs"
)

// JobRemover is the part of asynq.Inspector that removes a job before it
// runs. A worker gets the process's inspector (internal/cli).
type JobRemover interface {
	GetTaskInfo(queue, id string) (*asynq.TaskInfo, error)
	DeleteTask(queue, id string) error
}

// dropDeadlineJob removes the deadline finalize of a run that is sealed
// already: it would wait in asynq's scheduled set until the deadline (30 min
// by default) and then find nothing to do, which operators read in Asynqmon
// as a stale job after every run. It is best-effort: a failure is logged and
// never fails the finalize, since the job is harmless when it runs.
//
// Only a job that has not started is removed (scheduled, pending, retry):
// an active one is the job running now — the deadline's own finalize, which
// asynq refuses to delete anyway — and a completed one is retained on
// purpose (its id deduplicates enqueues). Every complete finalize that finds
// the run sealed calls this, not only the one that sealed it, so a worker
// that died between the seal and the removal is covered by the job's
// re-delivery.
func (h *Handlers) dropDeadlineJob(ctx context.Context, r run.Run, reason string) {
	if h.d.Jobs == nil || r.Status != run.StatusSealed || reason == jobs.ReasonDeadline {
		return
	}
	id := jobs.FinalizeID(r.Source, r.ID, jobs.ReasonDeadline)
	if own, _ := asynq.GetTaskID(ctx); own == id {
		return
	}
	l := logs.Named(h.d.Logger, logs.Finalize).With().Str("run_id", r.ID).Str("job_id", id).Logger()
	info, err := h.d.Jobs.GetTaskInfo(jobs.QueueControl, id)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound):
		return
	case err != nil:
		l.Warn().Err(err).Msg("cannot look up the run's deadline finalize; it stays scheduled and finds nothing to do")
		return
	}
	switch info.State {
	case asynq.TaskStateScheduled, asynq.TaskStatePending, asynq.TaskStateRetry:
	default:
		return
	}
	err = h.d.Jobs.DeleteTask(jobs.QueueControl, id)
	switch {
	case err == nil:
		l.Debug().Str("state", info.State.String()).Msg("run sealed before its deadline; deadline finalize removed")
	case errors.Is(err, asynq.ErrTaskNotFound):
		// Another finalize removed it, or it ran meanwhile.
	default:
		// Active now (it started between the look-up and the delete), or
		// Redis failed: either way the job runs and finds the run sealed.
		l.Warn().Err(err).Msg("cannot remove the run's deadline finalize; it runs at the deadline and finds nothing to do")
	}
}
