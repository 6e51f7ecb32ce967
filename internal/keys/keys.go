package keys

import (
	"fmt"
	"regexp"
)

// DefaultPrefix is the namespace of every apmtel key.
const DefaultPrefix = "apmtel"

var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// ValidRunID reports whether id may be used in a key and an asynq task id.
func ValidRunID(id string) error {
	if !runIDPattern.MatchString(id) {
		return fmt.Errorf("invalid run id %q: want 1-128 characters of [A-Za-z0-9._:-], starting with a letter or digit", id)
	}
	return nil
}

// Space builds keys under one prefix.
type Space struct{ Prefix string }

// New returns a key space with the given prefix, or DefaultPrefix when empty.
func New(prefix string) Space {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return Space{Prefix: prefix}
}

// Run is the hash holding a run's metadata (status, created_at, deadline, tasks, indices…).
func (s Space) Run(runID string) string { return s.Prefix + ":run:" + runID }

// Results is the hash of task name → JSON task record for one run.
func (s Space) Results(runID string) string { return s.Prefix + ":run:" + runID + ":results" }

// Pending is the set of task names of a run that have no final outcome yet.
func (s Space) Pending(runID string) string { return s.Prefix + ":run:" + runID + ":pending" }

// Snapshot is the string holding a run's assembled telemetry object.
func (s Space) Snapshot(runID string) string { return s.Prefix + ":run:" + runID + ":snapshot" }

// Runs is the sorted set of run ids scored by creation time (ms), the bounded run history.
func (s Space) Runs() string { return s.Prefix + ":runs" }

// Latest is the string holding the id of the newest finalized run.
func (s Space) Latest() string { return s.Prefix + ":latest" }

// LastGood is the hash of task name → JSON of the task's last successful fragment,
// used to keep a failed task's previous value (Kibana erases it).
func (s Space) LastGood() string { return s.Prefix + ":lastgood" }

// SearchSlots is the sorted set of leases of the cluster-wide search limiter.
func (s Space) SearchSlots() string { return s.Prefix + ":searchslots" }

// SearchQueue is the sorted set of tickets waiting for a search slot, scored
// by arrival time (µs), so slots are handed out first come, first served.
func (s Space) SearchQueue() string { return s.Prefix + ":searchslots:queue" }

// SearchWaiters is the sorted set of waiting tickets scored by their waiter
// lease expiry (ms): a waiter that stops polling (dead process) leaves the queue.
func (s Space) SearchWaiters() string { return s.Prefix + ":searchslots:waiters" }

// RunKeys lists every key that belongs to one run, for deletion when it leaves the history.
func (s Space) RunKeys(runID string) []string {
	return []string{s.Run(runID), s.Results(runID), s.Pending(runID), s.Snapshot(runID)}
}
