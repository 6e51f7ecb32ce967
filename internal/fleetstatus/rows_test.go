package fleetstatus

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/apmtel/apmtel/internal/backoff"
	"github.com/apmtel/apmtel/internal/fleet"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/spread"
	"github.com/apmtel/apmtel/scheduler"
)

func ptr(t time.Time) *time.Time { return &t }

func TestRows(t *testing.T) {
	t.Parallel()
	set, err := fleet.Parse("c.yaml", []byte(`clusters:
  - name: healthy
    urls: ["http://127.0.0.1:9200"]
  - name: sick
    urls: ["http://127.0.0.1:9201"]
  - name: off
    urls: ["http://127.0.0.1:9202"]
    enabled: false
  - name: new
    urls: ["http://127.0.0.1:9203"]
  - name: partial
    urls: ["http://127.0.0.1:9204"]
`))
	if err != nil {
		t.Fatal(err)
	}
	const interval = 12 * time.Hour
	sch := Schedule{Interval: interval, Spread: 3 * time.Hour}
	slot := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	now := slot.Add(5 * time.Hour)
	prev := slot.Add(-interval)
	off := func(name string) time.Duration { return spread.Offset(name, interval, 3*time.Hour) }
	sealed := func(id string, created time.Time, failed ...string) run.Run {
		return run.Run{ID: id, Kind: run.KindFull, Status: run.StatusSealed, CreatedAt: created,
			SealedAt: created.Add(90 * time.Second), Upload: run.Upload{State: run.UploadUploaded},
			Report: &run.Report{Failed: failed}}
	}
	sickState := backoff.State{}.Failed(backoff.DefaultPolicy(interval), "sched-20261203T120000Z", prev.Add(time.Hour), "x")
	sickState = sickState.Failed(backoff.DefaultPolicy(interval), "sched-20261204T000000Z", prev.Add(2*time.Hour), "y")
	sickState = sickState.Failed(backoff.DefaultPolicy(interval), scheduler.ScheduledRunID(slot), slot.Add(time.Hour), "dial tcp 127.0.0.1:9201: connection refused")
	states := map[string]ClusterState{
		"healthy": {Runs: []run.Run{sealed(scheduler.ScheduledRunID(slot), slot.Add(off("healthy")))}},
		"sick": {Runs: []run.Run{
			{ID: scheduler.ScheduledRunID(slot), Kind: run.KindFull, Status: run.StatusSealed, CreatedAt: slot, SealedAt: slot.Add(time.Hour),
				Report: &run.Report{Failed: []string{"a", "b"}}},
			sealed("manual-1", prev.Add(-time.Hour)),
		}, Backoff: sickState},
		"off":     {Runs: []run.Run{sealed(scheduler.ScheduledRunID(prev), prev)}},
		"partial": {Runs: []run.Run{sealed(scheduler.ScheduledRunID(prev), prev.Add(off("partial")), "services", "agents")}},
	}
	rows := Rows(set, states, sch, now)
	want := []Row{
		{Name: "healthy", Enabled: true, Health: backoff.StatusHealthy,
			LastRun: &LastRun{ID: "sched-20261204T120000Z", Kind: run.KindFull, Status: run.StatusSealed, Outcome: run.OutcomeOK,
				Upload: "uploaded", CreatedAt: slot.Add(off("healthy")), DurationMS: 90000},
			LastSuccessAt: ptr(slot.Add(off("healthy") + 90*time.Second)),
			NextDueAt:     ptr(slot.Add(interval + off("healthy")))},
		// Never ran: due at its offset in the current slot (already past: runs at once).
		{Name: "new", Enabled: true, Health: backoff.StatusHealthy, NextDueAt: ptr(slot.Add(off("new")))},
		{Name: "off", Enabled: false, DisabledReason: "enabled: false in the clusters file", Health: backoff.StatusHealthy,
			LastRun: &LastRun{ID: "sched-20261204T000000Z", Kind: run.KindFull, Status: run.StatusSealed, Outcome: run.OutcomeOK,
				Upload: "uploaded", CreatedAt: prev, DurationMS: 90000},
			LastSuccessAt: ptr(prev.Add(90 * time.Second)),
			Error:         "disabled: enabled: false in the clusters file"},
		// Last ran in the previous slot: due in this one.
		{Name: "partial", Enabled: true, Health: backoff.StatusHealthy,
			LastRun: &LastRun{ID: "sched-20261204T000000Z", Kind: run.KindFull, Status: run.StatusSealed, Outcome: run.OutcomeFailed,
				Upload: "uploaded", CreatedAt: prev.Add(off("partial")), DurationMS: 90000, Failed: []string{"services", "agents"}},
			NextDueAt: ptr(slot.Add(off("partial"))),
			Error:     "run sched-20261204T000000Z: 2 tasks failed: services, agents"},
		// Backed off for 12 h from 13:00: the first slot time after that.
		{Name: "sick", Enabled: true, Health: backoff.StatusBackingOff,
			LastRun: &LastRun{ID: "sched-20261204T120000Z", Kind: run.KindFull, Status: run.StatusSealed, Outcome: run.OutcomeFailed,
				Upload: "-", CreatedAt: slot, DurationMS: 3600000, Failed: []string{"a", "b"}},
			LastSuccessAt: ptr(prev.Add(-time.Hour + 90*time.Second)),
			BackoffUntil:  ptr(slot.Add(13 * time.Hour)),
			NextDueAt:     ptr(slot.Add(2*interval + off("sick"))),
			Error:         "backing off until 2026-12-05T01:00:00Z: dial tcp 127.0.0.1:9201: connection refused"},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Fatalf("rows (-want +got):\n%s", diff)
	}
	if !rows[4].NextDueAt.After(*rows[4].BackoffUntil) {
		t.Fatal("next due inside the backoff")
	}

	// --json: the documented fields, absent times as null.
	b, err := json.Marshal(rows[1])
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{`"name":"new"`, `"enabled":true`, `"last_run":null`, `"last_success_at":null`, `"next_due_at":"`, `"backoff_until":null`, `"error":""`} {
		if !strings.Contains(string(b), f) {
			t.Fatalf("json %s lacks %s", b, f)
		}
	}
}

func TestSlotOfRunIDMatchesTheScheduler(t *testing.T) {
	t.Parallel()
	slot := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	if got, ok := SlotOfRunID(scheduler.ScheduledRunID(slot)); !ok || !got.Equal(slot) {
		t.Fatalf("slot %s %v", got, ok)
	}
	for _, id := range []string{scheduler.ManualRunID(slot), "sched-x", ""} {
		if _, ok := SlotOfRunID(id); ok {
			t.Fatalf("%q read as scheduled", id)
		}
	}
}
