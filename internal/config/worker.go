package config

import "time"

// Worker is how one worker process takes jobs.
type Worker struct {
	// Concurrency is the number of jobs one worker runs at once.
	Concurrency int
	// PollInterval is how often an idle worker checks the queues (asynq TaskCheckInterval).
	PollInterval time.Duration
	// OrphanMinAge is how long an entry of asynq's active list must have had
	// no usable task hash and no lease before a worker's janitor removes it
	// (internal/orphans).
	OrphanMinAge time.Duration
}

// Bounds of the worker settings: a poll below 1 ms is a busy loop.
const (
	maxConcurrency  = 256
	minPollInterval = time.Millisecond
	maxPollInterval = time.Minute
	minOrphanMinAge = time.Second
	maxOrphanMinAge = 24 * time.Hour
)

// DefaultWorker runs four jobs at once and polls five times a second.
func DefaultWorker() Worker {
	return Worker{Concurrency: 4, PollInterval: 200 * time.Millisecond, OrphanMinAge: 5 * time.Minute}
}

// Validate checks the bounds.
func (w Worker) Validate() error {
	var p problems
	p.bound("APMTEL_CONCURRENCY", int64(w.Concurrency), 1, maxConcurrency)
	p.within("APMTEL_POLL_INTERVAL", w.PollInterval, minPollInterval, maxPollInterval)
	p.within("APMTEL_ORPHAN_MIN_AGE", w.OrphanMinAge, minOrphanMinAge, maxOrphanMinAge)
	return p.err()
}
