package workers

import (
	"context"

	"github.com/hibiken/asynq"

	"github.com/apmtel/apmtel/internal/logs"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/jobs"
)

// JobRemover removes a job before it runs; a worker gets the process's
// inspector (internal/cli).
type JobRemover = jobs.Remover

// dropDeadlineJob removes the deadline finalize of a run that is sealed
// already: it would wait in asynq's scheduled set until the deadline (30 min
// by default) and then find nothing to do, which operators read in Asynqmon
// as a stale job after every run. It is best-effort: a failure is logged and
// never fails the finalize, since the job is harmless when it runs.
//
// The rule is jobs.RemoveUnlessRunning: an active job is the one running
// now, and a completed one is retained on purpose. Every complete finalize that finds
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
	state, removed, err := jobs.RemoveUnlessRunning(h.d.Jobs, jobs.QueueControl, id)
	switch {
	case err != nil:
		// Redis failed, or the job started between the look-up and the
		// delete: either way it runs and finds the run sealed.
		l.Warn().Err(err).Msg("cannot remove the run's deadline finalize; it runs at the deadline and finds nothing to do")
	case removed:
		l.Debug().Str("state", state.String()).Msg("run sealed before its deadline; deadline finalize removed")
	}
}
