package backoff

import (
	"strings"
	"testing"
	"time"
)

func TestPolicyDelay(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy(12 * time.Hour)
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{{0, 0}, {1, 0}, {2, 0}, {3, 12 * time.Hour}, {4, 24 * time.Hour}, {5, 24 * time.Hour}, {1000, 24 * time.Hour}} {
		if got := p.Delay(tc.failures); got != tc.want {
			t.Fatalf("Delay(%d) = %s, want %s", tc.failures, got, tc.want)
		}
	}
	short := DefaultPolicy(time.Minute)
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{{2, 0}, {3, time.Minute}, {4, 2 * time.Minute}, {7, 16 * time.Minute}, {13, 1024 * time.Minute}, {14, 24 * time.Hour}, {80, 24 * time.Hour}} {
		if got := short.Delay(tc.failures); got != tc.want {
			t.Fatalf("1m: Delay(%d) = %s, want %s", tc.failures, got, tc.want)
		}
	}
	for _, bad := range []Policy{{After: 0, Base: time.Hour, Max: MaxBackoff}, {After: 3, Base: 0, Max: MaxBackoff}, {After: 3, Base: 2 * MaxBackoff, Max: MaxBackoff}} {
		if bad.Validate() == nil {
			t.Fatalf("policy %+v accepted", bad)
		}
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestStateTransitions(t *testing.T) {
	t.Parallel()
	p := Policy{After: 3, Base: time.Hour, Max: MaxBackoff}
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	var s State
	if s.Status(t0) != StatusHealthy || s.Text(t0) != "" {
		t.Fatalf("zero state %v %q", s.Status(t0), s.Text(t0))
	}
	steps := []struct {
		run    string
		at     time.Time
		err    string
		status Status
		text   string
	}{
		{"r1", t0, "connection refused", StatusFailing, "failed 1 run in a row: connection refused"},
		{"r1", t0.Add(time.Minute), "again", StatusFailing, "failed 1 run in a row: connection refused"}, // same run: counted once
		{"r2", t0.Add(time.Hour), "timeout", StatusFailing, "failed 2 runs in a row: timeout"},
		{"r3", t0.Add(2 * time.Hour), "401 Unauthorized", StatusBackingOff, "backing off until 2026-12-04T15:00:00Z: 401 Unauthorized"},
		{"r4", t0.Add(3 * time.Hour), "401 Unauthorized", StatusBackingOff, "backing off until 2026-12-04T17:00:00Z: 401 Unauthorized"},
	}
	for i, st := range steps {
		s = s.Failed(p, st.run, st.at, st.err)
		if got := s.Status(st.at); got != st.status {
			t.Fatalf("step %d: status %s, want %s", i, got, st.status)
		}
		if got := s.Text(st.at); got != st.text {
			t.Fatalf("step %d: text %q, want %q", i, got, st.text)
		}
	}
	// The backoff ends by itself: failing, on schedule again.
	after := s.Until
	if s.BackingOff(after) || s.Status(after) != StatusFailing || !s.BackingOff(after.Add(-time.Millisecond)) {
		t.Fatalf("at Until: backing off %v status %s", s.BackingOff(after), s.Status(after))
	}
	if s = s.Succeeded(); s != (State{}) || s.Status(after) != StatusHealthy {
		t.Fatalf("after success %+v", s)
	}
	long := State{}.Failed(p, "r", t0, strings.Repeat("x", 5000))
	if len(long.LastError) > maxErrorLen+len("…") {
		t.Fatalf("last error kept %d bytes", len(long.LastError))
	}
}
