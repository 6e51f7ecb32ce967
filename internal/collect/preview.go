package collect

import (
	"context"
	"sync"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/telemetry"
)

// Preview runs tasks in-process, parallel at a time, through the same
// executor a worker uses (limiter, timeouts, classification), and returns
// their records. runID labels the requests (X-Opaque-Id).
func Preview(ctx context.Context, x *Executor, runID string, tasks []telemetry.Task, ix config.Indices, parallel int) map[string]run.TaskRecord {
	var mu sync.Mutex
	out := map[string]run.TaskRecord{}
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	for _, t := range tasks {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			started := x.Now.Now().UTC()
			o := x.Run(ctx, Job{RunID: runID, Task: t, Indices: ix})
			rec := o.Record(run.TaskRecord{Task: t.Name, Attempt: 1, MaxAttempts: 1, StartedAt: started}, x.Now.Now(), false, nil)
			mu.Lock()
			out[t.Name] = rec
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}
