package fleetstatus

import (
	"fmt"
	"strings"
	"time"

	"github.com/apmtel/apmtel/internal/backoff"
	"github.com/apmtel/apmtel/internal/fleet"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/spread"
)

// Schedule is what the next due time is computed from.
type Schedule struct {
	// Interval is APMTEL_INTERVAL; Spread is APMTEL_FLEET_SPREAD.
	Interval time.Duration
	Spread   time.Duration
}

// ClusterState is what Redis holds about one cluster.
type ClusterState struct {
	// Runs are its recent runs, newest first (run.Store.List).
	Runs []run.Run
	// Backoff is its sick-cluster state (backoff.Store.Get).
	Backoff backoff.State
}

// LastRun is a row's summary of the cluster's newest run.
type LastRun struct {
	ID        string      `json:"id"`
	Kind      run.Kind    `json:"kind"`
	Status    run.Status  `json:"status"`
	Outcome   run.Outcome `json:"outcome,omitempty"`
	Upload    string      `json:"upload"`
	CreatedAt time.Time   `json:"created_at"`
	// DurationMS is from creation to seal (or cancel); 0 while open.
	DurationMS int64    `json:"duration_ms,omitempty"`
	Failed     []string `json:"failed_tasks,omitempty"`
}

// Row is one cluster's line. Absent times are null in JSON.
type Row struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
	// DisabledReason says why a cluster is not enabled.
	DisabledReason string     `json:"disabled_reason,omitempty"`
	LastRun        *LastRun   `json:"last_run"`
	LastSuccessAt  *time.Time `json:"last_success_at"`
	NextDueAt      *time.Time `json:"next_due_at"`
	BackoffUntil   *time.Time `json:"backoff_until"`
	// Health is healthy, failing or backing-off (backoff.Status).
	Health backoff.Status `json:"health"`
	// Error is what needs the operator's eye first: why the cluster is
	// disabled, "backing off until T: <last error>", its failing streak,
	// or its last run's failed tasks or upload error; "" when all is well.
	Error string `json:"error"`
}

// Rows returns one row per cluster of set, in the Set's (name) order.
// states holds what Redis had per cluster name; a missing entry is a
// cluster that never ran.
func Rows(set fleet.Set, states map[string]ClusterState, sch Schedule, now time.Time) []Row {
	clusters := set.Clusters()
	out := make([]Row, 0, len(clusters))
	for _, c := range clusters {
		st := states[c.Name]
		r := Row{Name: c.Name, Enabled: c.Enabled, DisabledReason: c.DisabledReason, Health: st.Backoff.Status(now)}
		var lastSlot time.Time
		for i, rn := range st.Runs {
			if i == 0 {
				r.LastRun = summary(rn)
			}
			if r.LastSuccessAt == nil && rn.Status == run.StatusSealed && rn.Outcome() == run.OutcomeOK {
				t := rn.SealedAt
				r.LastSuccessAt = &t
			}
			if s, ok := SlotOfRunID(rn.ID); ok && s.After(lastSlot) {
				lastSlot = s
			}
		}
		if st.Backoff.BackingOff(now) {
			u := st.Backoff.Until
			r.BackoffUntil = &u
		}
		if c.Enabled && sch.Interval > 0 {
			off := spread.Offset(c.Name, sch.Interval, sch.Spread)
			next := spread.NextDue(now, sch.Interval, off, lastSlot)
			for next.Before(st.Backoff.Until) {
				next = next.Add(sch.Interval)
			}
			r.NextDueAt = &next
		}
		r.Error = rowError(c, st, r.LastRun, now)
		out = append(out, r)
	}
	return out
}

func summary(rn run.Run) *LastRun {
	l := &LastRun{ID: rn.ID, Kind: rn.Kind, Status: rn.Status, Outcome: rn.Outcome(), Upload: rn.Upload.String(), CreatedAt: rn.CreatedAt}
	end := rn.SealedAt
	if end.IsZero() && rn.Status == run.StatusCancelled {
		end = rn.ClosedAt
	}
	if !end.IsZero() {
		l.DurationMS = end.Sub(rn.CreatedAt).Milliseconds()
	}
	if rn.Report != nil {
		l.Failed = append([]string(nil), rn.Report.Failed...)
	}
	return l
}

func rowError(c fleet.Cluster, st ClusterState, last *LastRun, now time.Time) string {
	switch {
	case !c.Enabled:
		return "disabled: " + c.DisabledReason
	case st.Backoff.Status(now) != backoff.StatusHealthy:
		return st.Backoff.Text(now)
	case last == nil:
		return ""
	case len(last.Failed) > 0:
		return fmt.Sprintf("run %s: %d tasks failed: %s", last.ID, len(last.Failed), strings.Join(last.Failed, ", "))
	case st.Runs[0].Upload.State == run.UploadFailed:
		return fmt.Sprintf("run %s: upload failed: %s", last.ID, st.Runs[0].Upload.Error)
	}
	return ""
}

// scheduledPrefix and slotLayout spell the scheduler's run ids
// (scheduler.ScheduledRunID): "sched-20261126T120000Z".
const (
	scheduledPrefix = "sched-"
	slotLayout      = "20060102T150405Z"
)

// SlotOfRunID returns the slot of a scheduled run's id; false for a manual run.
func SlotOfRunID(id string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(id, scheduledPrefix)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(slotLayout, rest)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}
