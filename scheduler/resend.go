package scheduler

import (
	"context"
	"fmt"
	"time"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/jobs"
)

// Resend sends a sealed full run's payload again (`apmtel upload RUN`): after
// its upload failed for good, or to repeat a delivered one. The document id
// is the run's, so the telemetry index still holds one document per run.
func Resend(ctx context.Context, runs *run.Store, enq jobs.Enqueuer, timing config.Timing, id string) error {
	r, err := runs.Get(ctx, id)
	if err != nil {
		return err
	}
	if r.Status != run.StatusSealed {
		return &run.StateError{Run: id, Status: r.Status, Op: "upload"}
	}
	// A re-send is the operator's opt-in for this one run; every other
	// reason to skip still holds.
	if why := r.SkipReason(true, nil); why != "" {
		return fmt.Errorf("run %s is never uploaded: %s", id, why)
	}
	now := time.Now()
	if err := runs.UploadResend(ctx, id, now); err != nil {
		return err
	}
	t, err := jobs.NewUpload(jobs.RunPayload{Source: r.Source, RunID: id}, now.UnixMilli(), timing)
	if err := jobs.Enqueue(ctx, enq, t, err); err != nil {
		return fmt.Errorf("run %s: enqueue upload: %w", id, err)
	}
	return nil
}
