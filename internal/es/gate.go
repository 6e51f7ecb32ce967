package es

import (
	"context"
	"fmt"
)

// LocalGate is a Gate of n slots inside one process (apmtel preview and
// other in-process collections, which have no Redis semaphore); n <= 0 is
// no gate. A waiter that gives up takes no slot.
func LocalGate(n int) Gate {
	if n <= 0 {
		return nil
	}
	slots := make(chan struct{}, n)
	return func(ctx context.Context) (context.Context, func(), error) {
		select {
		case slots <- struct{}{}:
			return ctx, func() { <-slots }, nil
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("waiting for a request slot: %w", context.Cause(ctx))
		}
	}
}
