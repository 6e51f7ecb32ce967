package workers

import (
	"context"

	"github.com/apmtel/apmtel/internal/backoff"
	"github.com/apmtel/apmtel/internal/logs"
	"github.com/apmtel/apmtel/internal/run"
)

// RunFailure says whether an ended run counts as a failed run of its
// cluster for the backoff (internal/backoff), and why. Decided where a run
// ends: at its seal (finalize) and, later, when its upload fails for good.
//
// A run failed when none of its tasks has a result (every one failed or
// timed out: the cluster could not be queried), when the source identity
// errand failed (the cluster did not say who it is: no document can be
// built without a later lookup), or when its upload failed for good. A run
// with at least one result, its identity and a delivered (or outstanding)
// upload succeeded: one broken task is the task's problem, not the
// cluster's. Partial runs and dry runs do not count (an operator's test),
// nor does a cancelled run (an operator's decision).
func RunFailure(r run.Run) (failed bool, why string) {
	if r.Kind != run.KindFull || r.Status != run.StatusSealed {
		return false, ""
	}
	if r.Upload.State == run.UploadFailed {
		return true, "upload failed: " + r.Upload.Error
	}
	if e, ok := r.Errand(run.ErrandSourceIdentity); ok && e.Status == run.TaskFailed {
		return true, "source identity: " + e.Error
	}
	if rep := r.Report; rep != nil && len(r.Tasks) > 0 && len(rep.Failed) >= len(r.Tasks) {
		why := "every task failed"
		for _, name := range r.Tasks {
			if ts, ok := rep.Tasks[name]; ok && ts.Error != "" {
				why += ": " + ts.Error
				break
			}
		}
		return true, why
	}
	return false, ""
}

// countRun records an ended run in its cluster's backoff state: a failed
// run extends the streak (and may start a backoff), a successful one ends
// it. Nothing in a single-cluster deployment (no Backoff). A Redis error is
// logged: the next run's outcome corrects the state.
func (h *Handlers) countRun(ctx context.Context, r run.Run, counted bool) {
	if h.d.Backoff == nil || !counted {
		return
	}
	st := h.d.Backoff(r.Source)
	if st == nil {
		return
	}
	l := logs.Named(h.d.Logger, logs.Finalize).With().Str("run_id", r.ID).Str("cluster", r.Source).Logger()
	failed, why := RunFailure(r)
	var (
		s   backoff.State
		err error
	)
	if failed {
		s, err = st.Failed(ctx, r.ID, h.d.Now.Now(), why)
	} else {
		s, err = st.Succeeded(ctx)
	}
	if err != nil {
		l.Warn().Err(err).Msg("cannot record the run's outcome for the cluster's backoff")
		return
	}
	if failed {
		l.Warn().Int("failures", s.Failures).Time("backoff_until", s.Until).Str("error", why).Msg("cluster's run failed")
	}
}
