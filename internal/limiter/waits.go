package limiter

import (
	"context"
	"sync/atomic"
	"time"
)

// Waits adds up how long the requests of one context waited for their slot:
// a task's share of the queue, for the run's accounting. Safe for
// concurrent use by the task's requests.
type Waits struct {
	total, longest, count atomic.Int64
}

type waitsKey struct{}

// WithWaits returns a context whose requests' waits for a slot are added to w.
func WithWaits(ctx context.Context, w *Waits) context.Context {
	return context.WithValue(ctx, waitsKey{}, w)
}

// Total is the sum of the waits.
func (w *Waits) Total() time.Duration { return time.Duration(w.total.Load()) }

// Longest is the longest single wait.
func (w *Waits) Longest() time.Duration { return time.Duration(w.longest.Load()) }

// Count is how many slots were taken.
func (w *Waits) Count() int64 { return w.count.Load() }

// record adds one wait to the context's Waits, if it has one.
func record(ctx context.Context, d time.Duration) {
	w, _ := ctx.Value(waitsKey{}).(*Waits)
	if w == nil {
		return
	}
	w.total.Add(int64(d))
	w.count.Add(1)
	for {
		l := w.longest.Load()
		if int64(d) <= l || w.longest.CompareAndSwap(l, int64(d)) {
			return
		}
	}
}
