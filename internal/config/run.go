package config

import "time"

// Run is how runs are scheduled, bounded, retried and kept.
type Run struct {
	// Interval is the time between two scheduled runs (Kibana: 12h).
	Interval time.Duration
	// CatchupGrace: at start, the scheduler runs the current slot when the
	// newest snapshot is stale, unless the next slot starts within this.
	// The scheduler uses at most a quarter of Interval (scheduler.CatchupGrace):
	// a grace as long as the interval would skip every catch-up.
	CatchupGrace time.Duration
	// TaskTimeout bounds one telemetry task (one job attempt).
	TaskTimeout time.Duration
	// RunDeadline is how long after its creation a run is finalized even if
	// tasks are still outstanding.
	RunDeadline time.Duration
	// MaxRetry is how often a failed task is retried. Uploads are retried
	// within UploadRetryWindow instead (Timing.UploadMaxRetry).
	MaxRetry int
	// UploadRetryWindow is how long after sealing a failing upload is
	// retried; then the run's upload is marked failed (`apmtel upload RUN`
	// re-sends it).
	UploadRetryWindow time.Duration
	// HistoryLimit is how many runs are kept in Redis.
	HistoryLimit int
	// HistoryTTL is how long a run's record and snapshot are kept in Redis.
	HistoryTTL time.Duration
}

// Bounds of the run settings.
const (
	minInterval          = time.Minute
	maxInterval          = 366 * 24 * time.Hour
	minTaskTimeout       = 10 * time.Millisecond
	maxTaskTimeout       = 24 * time.Hour
	maxRunDeadline       = 7 * 24 * time.Hour
	maxMaxRetry          = 25
	minUploadRetryWindow = time.Second
	maxUploadRetryWindow = 30 * 24 * time.Hour
	maxHistoryLimit      = 10000
	minHistoryTTL        = time.Second
	maxHistoryTTL        = 366 * 24 * time.Hour
)

// DefaultRun is Kibana's 12 h schedule, 5 min per task, 30 min per run,
// three retries, 72 h of upload retries, 50 runs kept for a week.
func DefaultRun() Run {
	return Run{
		Interval:          12 * time.Hour,
		CatchupGrace:      10 * time.Minute,
		TaskTimeout:       5 * time.Minute,
		RunDeadline:       30 * time.Minute,
		MaxRetry:          3,
		UploadRetryWindow: 72 * time.Hour,
		HistoryLimit:      50,
		HistoryTTL:        7 * 24 * time.Hour,
	}
}

// Validate checks every bound and that a run's keys outlive the run.
func (r Run) Validate() error {
	var p problems
	p.within("APMTEL_INTERVAL", r.Interval, minInterval, maxInterval)
	p.within("APMTEL_CATCHUP_GRACE", r.CatchupGrace, 0, maxInterval)
	p.within("APMTEL_TASK_TIMEOUT", r.TaskTimeout, minTaskTimeout, maxTaskTimeout)
	p.within("APMTEL_RUN_DEADLINE", r.RunDeadline, minTaskTimeout, maxRunDeadline)
	p.bound("APMTEL_MAX_RETRY", int64(r.MaxRetry), 0, maxMaxRetry)
	p.within("APMTEL_UPLOAD_RETRY_WINDOW", r.UploadRetryWindow, minUploadRetryWindow, maxUploadRetryWindow)
	p.bound("APMTEL_HISTORY_LIMIT", int64(r.HistoryLimit), 1, maxHistoryLimit)
	p.within("APMTEL_HISTORY_TTL", r.HistoryTTL, minHistoryTTL, maxHistoryTTL)
	if r.TaskTimeout > 0 && r.RunDeadline > 0 && r.RunDeadline < r.TaskTimeout {
		p.add("APMTEL_RUN_DEADLINE", "%s is shorter than APMTEL_TASK_TIMEOUT %s", FormatDuration(r.RunDeadline), FormatDuration(r.TaskTimeout))
	}
	// A run's keys carry the history TTL: it must outlive the run's deadline
	// and the upload's retry window, or runs expire mid-flight.
	if r.HistoryTTL > 0 && r.RunDeadline > 0 && r.UploadRetryWindow > 0 && r.HistoryTTL <= r.RunDeadline+r.UploadRetryWindow {
		p.add("APMTEL_HISTORY_TTL", "%s must be longer than APMTEL_RUN_DEADLINE (%s) plus APMTEL_UPLOAD_RETRY_WINDOW (%s)",
			FormatDuration(r.HistoryTTL), FormatDuration(r.RunDeadline), FormatDuration(r.UploadRetryWindow))
	}
	return p.err()
}
