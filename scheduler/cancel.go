package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/jobs"
)

// Cancelled is what Cancel did.
type Cancelled struct {
	// Stopped counts in-flight collect jobs whose context was cancelled (their
	// searches end); Removed counts collect jobs deleted before they ran
	// (queued, scheduled or waiting to retry). The deadline finalize is
	// deleted too, and not counted.
	Stopped, Removed int
}

// Cancel cancels an open run: its unfinished tasks are recorded as
// cancelled and its upload skipped (one transition), then its in-flight
// collect jobs are stopped and its queued jobs — collects and the deadline
// finalize — are deleted, so the run leaves no failed or archived job
// behind. A run that is no longer open gives a *run.StateError.
func Cancel(ctx context.Context, runs *run.Store, insp *asynq.Inspector, id string) (Cancelled, error) {
	var c Cancelled
	r, err := runs.Get(ctx, id)
	if err != nil {
		return c, err
	}
	if err := runs.Cancel(ctx, id, time.Now()); err != nil {
		return c, err
	}
	active, err := insp.ListActiveTasks(jobs.QueueCollect, asynq.PageSize(1000))
	if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		return c, fmt.Errorf("run %s cancelled, but its in-flight jobs could not be listed: %w", id, err)
	}
	var stopped []string
	for _, t := range active {
		if p, err := jobs.DecodeCollect(t.Payload); err == nil && p.RunID == id && sameSource(p.Source, r.Source) {
			if err := insp.CancelProcessing(t.ID); err == nil {
				stopped = append(stopped, t.ID)
			}
		}
	}
	c.Stopped = len(stopped)
	del := func(queue, tid string) bool {
		_, removed, _ := jobs.RemoveUnlessRunning(insp, queue, tid)
		return removed
	}
	for _, name := range r.Tasks {
		if del(jobs.QueueCollect, jobs.CollectID(r.Source, id, name)) {
			c.Removed++
		}
	}
	del(jobs.QueueControl, jobs.FinalizeID(r.Source, id, jobs.ReasonDeadline))
	// A stopped job goes to the retry set when its handler returns; remove it
	// there, so nothing of the run is left to run or to look like a failure.
	deadline := time.Now().Add(5 * time.Second)
	for len(stopped) > 0 && time.Now().Before(deadline) {
		rest := stopped[:0]
		for _, tid := range stopped {
			if state, _, _ := jobs.RemoveUnlessRunning(insp, jobs.QueueCollect, tid); state == asynq.TaskStateActive {
				rest = append(rest, tid)
			}
		}
		stopped = rest
		if len(stopped) > 0 {
			select {
			case <-ctx.Done():
				return c, nil
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return c, nil
}

func sameSource(a, b string) bool { return keys.SourceOrDefault(a) == keys.SourceOrDefault(b) }
