package telemetry

import (
	"context"
	"errors"
	"sync"
)

// maxFanout bounds the goroutines one fan-out starts at once. It is not the
// load bound: every request passes through the cluster-wide cap (the limiter
// in workers, an in-process gate in preview), and with the cap at 16 a task
// of 21 requests still sends them in ⌈21/16⌉ rounds. It only keeps a task
// from parking hundreds of goroutines on the cap.
const maxFanout = 32

// each runs fn(ctx, i) for every i in [0, n), concurrently, and waits for
// all. The first failure cancels the others' context; the error returned is
// that of the lowest i that failed for a reason of its own (not the
// cancellation), so a task reports the same error it would report running
// its requests in order.
//
// fn must write its result into slot i of a slice owned by the caller and
// must not call env.warn: results are merged, and warnings issued, in order
// by the caller after each returns, which keeps the output identical to a
// serial run.
func each(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errs := make([]error, n)
	sem := make(chan struct{}, min(n, maxFanout))
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			errs[i] = context.Cause(ctx)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				errs[i] = err
				cancel(errSibling)
			}
		}()
	}
	wg.Wait()
	siblingCancelled := errors.Is(context.Cause(ctx), errSibling)
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if !errors.Is(err, errSibling) && !(siblingCancelled && errors.Is(err, context.Canceled)) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// errSibling is the cancellation cause of the requests still running when
// another request of the same task failed.
var errSibling = errors.New("another request of this task failed")
