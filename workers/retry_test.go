package workers_test

import (
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/apmtel/apmtel/jobs"
	"github.com/apmtel/apmtel/workers"
)

func TestUploadRetryDecide(t *testing.T) {
	sealed := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	p := workers.UploadRetry{Window: time.Hour}
	for _, tc := range []struct {
		name      string
		attempt   int
		after     time.Duration
		permanent bool
		final     bool
		why       string
	}{
		{"first failure retries", 1, 0, false, false, ""},
		{"a permanent error is final at once", 1, 0, true, true, "permanent error"},
		{"permanent beats the budget", 20, 0, true, true, "permanent error"},
		{"the last attempt of the budget", 20, time.Minute, false, true, "20 attempts made"},
		{"within the window", 5, 30 * time.Minute, false, false, ""},
		// The 6th retry would wait 160 s: 58 min + 160 s is past the hour.
		{"the next retry would start after the window", 6, 58 * time.Minute, false, true, "retry window APMTEL_UPLOAD_RETRY_WINDOW=1h0m0s spent"},
		{"the next retry still starts within it", 6, 55 * time.Minute, false, false, ""},
		{"past the window", 3, 2 * time.Hour, false, true, "retry window APMTEL_UPLOAD_RETRY_WINDOW=1h0m0s spent"},
	} {
		final, why := p.Decide(workers.UploadAttempt{Attempt: tc.attempt, MaxAttempts: 20, Since: sealed, Now: sealed.Add(tc.after), Permanent: tc.permanent})
		if final != tc.final || why != tc.why {
			t.Errorf("%s: final %v %q, want %v %q", tc.name, final, why, tc.final, tc.why)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	up, collect := asynq.NewTask(jobs.TypeUpload, nil), asynq.NewTask(jobs.TypeCollect, nil)
	for _, tc := range []struct {
		n       int
		t       *asynq.Task
		want    time.Duration
		because string
	}{
		{0, up, 5 * time.Second, "uploads start at 5 s"},
		{5, up, 160 * time.Second, "and double"},
		{20, up, 10 * time.Minute, "up to 10 min"},
		{0, collect, 2 * time.Second, "tasks start at 2 s"},
		{20, collect, 5 * time.Minute, "up to 5 min"},
		{0, nil, 2 * time.Second, "a job of no type is a task"},
	} {
		if got := workers.RetryDelay(tc.n, nil, tc.t); got != tc.want {
			t.Errorf("RetryDelay(%d, %v) = %s, want %s (%s)", tc.n, tc.t, got, tc.want, tc.because)
		}
	}
}
