package config

import "time"

// Timing is every timeout, grace period and retry budget that apmtel derives
// from the configuration. They are computed here, once, so that the job
// constructors, the worker server and the docs cannot drift apart.
type Timing struct {
	// CollectJobTimeout is asynq's timeout of a collect job: the task's own
	// timeout plus a grace, so that the task's timeout fires first and its
	// outcome is recorded before asynq gives up on the job.
	CollectJobTimeout time.Duration
	// CollectMaxRetry is APMTEL_MAX_RETRY: retries of a failed task.
	CollectMaxRetry int
	// FinalizeJobTimeout and FinalizeMaxRetry bound the finalize job (Redis work only).
	FinalizeJobTimeout time.Duration
	FinalizeMaxRetry   int
	// UploadJobTimeout bounds one upload attempt (one request to the sink).
	UploadJobTimeout time.Duration
	// UploadMaxRetry is as many retries as UploadRetryDelay fits into
	// APMTEL_UPLOAD_RETRY_WINDOW; the window, checked on every failure, is
	// what really ends the retries.
	UploadMaxRetry int
	// ShutdownTimeout is how long in-flight jobs get after SIGTERM before their
	// context is cancelled and they return to the queue; below Docker's 10 s.
	ShutdownTimeout time.Duration
}

const (
	collectGrace      = 30 * time.Second
	shutdownTimeout   = 8 * time.Second
	finalizeTimeout   = 2 * time.Minute
	finalizeRetries   = 10
	uploadRetryBase   = 5 * time.Second
	uploadRetryCap    = 10 * time.Minute
	taskRetryBase     = 2 * time.Second
	taskRetryCap      = 5 * time.Minute
	minUploadJobLimit = 2 * time.Minute
)

// Timing derives the timings of c.
func (c Config) Timing() Timing {
	t := Timing{
		CollectJobTimeout:  c.TaskTimeout + collectGrace,
		CollectMaxRetry:    c.MaxRetry,
		FinalizeJobTimeout: finalizeTimeout,
		FinalizeMaxRetry:   finalizeRetries,
		UploadJobTimeout:   max(minUploadJobLimit, c.SearchTimeout+collectGrace),
		ShutdownTimeout:    shutdownTimeout,
	}
	var sum time.Duration
	for n := 0; sum < c.UploadRetryWindow && n < 100000; n++ {
		sum += UploadRetryDelay(n)
		t.UploadMaxRetry = n + 1
	}
	return t
}

// TaskRetryDelay is the wait before retry n+1 of a task: exponential from 2 s, capped at 5 min.
func TaskRetryDelay(n int) time.Duration { return backoff(n, taskRetryBase, taskRetryCap) }

// UploadRetryDelay is the wait before retry n+1 of an upload: exponential
// from 5 s, capped at 10 min, so a telemetry cluster that comes back is
// noticed within ten minutes however long it was down.
func UploadRetryDelay(n int) time.Duration { return backoff(n, uploadRetryBase, uploadRetryCap) }

func backoff(n int, base, limit time.Duration) time.Duration {
	if n < 0 {
		n = 0
	}
	d := base
	for i := 0; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}
