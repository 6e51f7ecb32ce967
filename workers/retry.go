package workers

import (
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/jobs"
)

// RetryDelay is the wait before a job's retry n+1 (asynq's RetryDelayFunc):
// an upload's is its policy's (UploadRetry.Delay), a task's backs off to a
// 5 min cap (config.TaskRetryDelay).
func RetryDelay(n int, _ error, t *asynq.Task) time.Duration {
	if t != nil && t.Type() == jobs.TypeUpload {
		return UploadRetry{}.Delay(n)
	}
	return config.TaskRetryDelay(n)
}

// UploadRetry is the upload's retry policy, the one place that says how an
// upload retries: the wait before each retry (RetryDelay), and whether a
// failed attempt is the last (Decide). The job's attempt budget
// (config.Timing's UploadMaxRetry, the retries that fit into the window)
// only bounds asynq; the window is what ends the retries.
type UploadRetry struct {
	// Window is APMTEL_UPLOAD_RETRY_WINDOW, counted from when the upload
	// last became pending (the seal, or a re-send).
	Window time.Duration
}

// Delay is the wait before retry n+1: exponential from 5 s, capped at 10 min
// (config.UploadRetryDelay), so a telemetry cluster that comes back is
// noticed within ten minutes however long it was down.
func (UploadRetry) Delay(n int) time.Duration { return config.UploadRetryDelay(n) }

// UploadAttempt is one failed upload attempt.
type UploadAttempt struct {
	// Attempt is the 1-based attempt that failed; MaxAttempts the job's budget.
	Attempt, MaxAttempts int
	// Since is when the upload became pending; Now is when the attempt failed.
	Since, Now time.Time
	// Permanent says the error cannot go away by retrying (a refused
	// document, a run whose document cannot be built).
	Permanent bool
}

// Decide says whether the failed attempt a is the last, and if so why: a
// permanent error, the window spent (the next retry would start after it),
// or the attempts made.
func (p UploadRetry) Decide(a UploadAttempt) (final bool, why string) {
	switch {
	case a.Permanent:
		return true, "permanent error"
	case a.Attempt >= a.MaxAttempts:
		return true, fmt.Sprintf("%d attempts made", a.Attempt)
	case a.Now.Sub(a.Since)+p.Delay(a.Attempt-1) >= p.Window:
		return true, fmt.Sprintf("retry window APMTEL_UPLOAD_RETRY_WINDOW=%s spent", p.Window)
	}
	return false, ""
}
