package backoff

import (
	"fmt"
	"time"
)

// DefaultAfter is APMTEL_FLEET_BACKOFF_AFTER's default.
const DefaultAfter = 3

// MaxBackoff caps a backoff: a sick cluster is still tried once a day.
const MaxBackoff = 24 * time.Hour

// maxErrorLen bounds the stored last error.
const maxErrorLen = 1024

// Policy says when and how long a cluster is backed off.
type Policy struct {
	// After is the number of consecutive failed runs that starts a backoff.
	After int
	// Base is the first backoff; each further failure doubles it. The
	// schedule interval: shorter would not skip a single slot.
	Base time.Duration
	// Max caps the backoff (MaxBackoff).
	Max time.Duration
}

// DefaultPolicy is the policy of a deployment scheduling every interval.
func DefaultPolicy(interval time.Duration) Policy {
	return Policy{After: DefaultAfter, Base: interval, Max: MaxBackoff}
}

// Validate checks the policy, naming APMTEL_FLEET_BACKOFF_AFTER.
func (p Policy) Validate() error {
	switch {
	case p.After < 1:
		return fmt.Errorf("APMTEL_FLEET_BACKOFF_AFTER: must be at least 1, got %d", p.After)
	case p.Base <= 0 || p.Max < p.Base:
		return fmt.Errorf("backoff: base %s must be positive and at most the cap %s", p.Base, p.Max)
	}
	return nil
}

// Delay is the backoff after failures consecutive failed runs: none below
// After, then Base·2^(failures−After), at most Max.
func (p Policy) Delay(failures int) time.Duration {
	if failures < p.After || p.Base <= 0 {
		return 0
	}
	d := p.Base
	for i := p.After; i < failures; i++ {
		if d >= p.Max/2 {
			return p.Max
		}
		d *= 2
	}
	return min(d, p.Max)
}

// Status is what a cluster's State means at one moment.
type Status string

const (
	// StatusHealthy: its last run succeeded (or none failed yet).
	StatusHealthy Status = "healthy"
	// StatusFailing: its last runs failed, fewer than the policy's After,
	// or its backoff ended; it runs on schedule.
	StatusFailing Status = "failing"
	// StatusBackingOff: no scheduled run before Until.
	StatusBackingOff Status = "backing-off"
)

// State is a cluster's run-failure record. The zero State is healthy.
type State struct {
	// Failures counts consecutive failed runs.
	Failures int
	// LastError is the last failed run's error.
	LastError string
	// LastFailureAt is when the last failed run ended.
	LastFailureAt time.Time
	// Until ends the backoff (zero: none).
	Until time.Time
	// LastRun is the id of the run counted last: counting the same run
	// again (a retried finalize) changes nothing.
	LastRun string
}

// Failed is the State after run failed at at with errText.
func (s State) Failed(p Policy, run string, at time.Time, errText string) State {
	if run != "" && run == s.LastRun {
		return s
	}
	if len(errText) > maxErrorLen {
		errText = errText[:maxErrorLen] + "…"
	}
	at = at.UTC().Truncate(time.Millisecond) // as stored
	n := State{Failures: s.Failures + 1, LastError: errText, LastFailureAt: at, LastRun: run}
	if d := p.Delay(n.Failures); d > 0 {
		n.Until = at.Add(d)
	}
	return n
}

// Succeeded is the State after a run succeeded: the zero State, healthy,
// backoff over (the store then holds no key for the cluster).
func (s State) Succeeded() State { return State{} }

// BackingOff reports whether scheduled runs are held back at now.
func (s State) BackingOff(now time.Time) bool { return now.Before(s.Until) }

// Status classifies the State at now.
func (s State) Status(now time.Time) Status {
	switch {
	case s.BackingOff(now):
		return StatusBackingOff
	case s.Failures > 0:
		return StatusFailing
	}
	return StatusHealthy
}

// Text is what an operator reads: "backing off until T: <last error>",
// "failed N runs in a row: <last error>", or "" when healthy.
func (s State) Text(now time.Time) string {
	switch s.Status(now) {
	case StatusBackingOff:
		return fmt.Sprintf("backing off until %s: %s", s.Until.UTC().Format(time.RFC3339), s.LastError)
	case StatusFailing:
		runs := "runs"
		if s.Failures == 1 {
			runs = "run"
		}
		return fmt.Sprintf("failed %d %s in a row: %s", s.Failures, runs, s.LastError)
	}
	return ""
}
