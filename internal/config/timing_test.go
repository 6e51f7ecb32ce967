package config

import (
	"testing"
	"time"
)

func TestTiming(t *testing.T) {
	c := Default()
	got := c.Timing()
	if got.CollectJobTimeout != c.TaskTimeout+30*time.Second || got.CollectMaxRetry != c.MaxRetry {
		t.Errorf("collect: %+v", got)
	}
	if got.ShutdownTimeout >= 10*time.Second {
		t.Errorf("shutdown %s must stay below Docker's 10 s grace", got.ShutdownTimeout)
	}
	// The upload budget must cover the whole window, and not much more.
	var sum time.Duration
	for n := 0; n < got.UploadMaxRetry; n++ {
		sum += UploadRetryDelay(n)
	}
	if sum < c.UploadRetryWindow || sum-UploadRetryDelay(got.UploadMaxRetry-1) >= c.UploadRetryWindow {
		t.Errorf("upload retries %d sum to %s for a window of %s", got.UploadMaxRetry, sum, c.UploadRetryWindow)
	}
	tests := []struct {
		n    int
		task time.Duration
		up   time.Duration
	}{{0, 2 * time.Second, 5 * time.Second}, {1, 4 * time.Second, 10 * time.Second}, {6, 128 * time.Second, 320 * time.Second},
		{8, 5 * time.Minute, 10 * time.Minute}, {400, 5 * time.Minute, 10 * time.Minute}}
	for _, tc := range tests {
		if d := TaskRetryDelay(tc.n); d != tc.task {
			t.Errorf("TaskRetryDelay(%d) = %s, want %s", tc.n, d, tc.task)
		}
		if d := UploadRetryDelay(tc.n); d != tc.up {
			t.Errorf("UploadRetryDelay(%d) = %s, want %s", tc.n, d, tc.up)
		}
	}
}
