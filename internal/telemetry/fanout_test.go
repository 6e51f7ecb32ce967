package telemetry

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func TestEach(t *testing.T) {
	t.Run("all run, concurrently", func(t *testing.T) {
		var inflight, peak atomic.Int64
		out := make([]int, 10)
		err := each(context.Background(), 10, func(ctx context.Context, i int) error {
			n := inflight.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(20 * time.Millisecond)
			inflight.Add(-1)
			out[i] = i * i
			return nil
		})
		if err != nil || out[9] != 81 || out[3] != 9 {
			t.Fatalf("out %v err %v", out, err)
		}
		if peak.Load() < 2 {
			t.Errorf("peak %d: not concurrent", peak.Load())
		}
	})
	t.Run("lowest own error wins, the rest are cancelled", func(t *testing.T) {
		var cancelled atomic.Int64
		err := each(context.Background(), 8, func(ctx context.Context, i int) error {
			switch i {
			case 5:
				return fmt.Errorf("request %d failed", i)
			case 6:
				time.Sleep(10 * time.Millisecond)
				return fmt.Errorf("request %d failed", i)
			}
			select {
			case <-ctx.Done():
				cancelled.Add(1)
				return ctx.Err()
			case <-time.After(5 * time.Second):
				return nil
			}
		})
		if err == nil || err.Error() != "request 5 failed" {
			t.Fatalf("err %v, want request 5's", err)
		}
		if cancelled.Load() != 6 {
			t.Errorf("%d siblings cancelled, want 6", cancelled.Load())
		}
	})
	t.Run("parent cancellation is reported", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := each(ctx, 3, func(ctx context.Context, i int) error { return ctx.Err() })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("bounded goroutines", func(t *testing.T) {
		var inflight, peak atomic.Int64
		_ = each(context.Background(), 3*maxFanout, func(ctx context.Context, i int) error {
			n := inflight.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(5 * time.Millisecond)
			inflight.Add(-1)
			return nil
		})
		if peak.Load() > maxFanout {
			t.Errorf("peak %d > %d", peak.Load(), maxFanout)
		}
	})
}
