package keys

import (
	"strings"
	"testing"
)

func TestKeys(t *testing.T) {
	s := New("")
	tests := []struct{ got, want string }{
		{s.Run("r1"), "apmtel:{default}:run:r1"},
		{s.Results("r1"), "apmtel:{default}:run:r1:results"},
		{s.Pending("r1"), "apmtel:{default}:run:r1:pending"},
		{s.Attempts("r1"), "apmtel:{default}:run:r1:attempts"},
		{s.Snapshot("r1"), "apmtel:{default}:run:r1:snapshot"},
		{s.Runs(), "apmtel:{default}:runs"},
		{s.Latest(), "apmtel:{default}:latest"},
		{s.LastGood(), "apmtel:{default}:lastgood"},
		{s.Counters(), "apmtel:{default}:counters"},
		{s.SearchSlots(), "apmtel:{default}:searchslots"},
		{New("x").Run("r"), "x:{default}:run:r"},
		{NewFor("x", "prod-eu").Run("r"), "x:{prod-eu}:run:r"},
		{NewFleet("").SearchSlots(), "apmtel:{_fleet}:searchslots"},
		{NewFleet("x").SearchQueue(), "x:{_fleet}:searchslots:queue"},
		{NewFleet("x").SearchWaiters(), "x:{_fleet}:searchslots:waiters"},
		{NewFleet("x").SearchWake(), "x:{_fleet}:searchslots:wake"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	rk := s.RunKeys("r")
	if len(rk) != 6 || rk[0] != s.Run("r") || rk[4] != s.Snapshot("r") || rk[5] != s.Plugins("r") {
		t.Errorf("RunKeys: %v", rk)
	}
	for _, k := range rk {
		if !strings.HasPrefix(k, s.RunPrefix()) {
			t.Errorf("%s does not start with RunPrefix %s", k, s.RunPrefix())
		}
	}
}

// TestOneSlot checks that every key of a space hashes to one Redis Cluster
// slot, which the run store's multi-key scripts require.
func TestOneSlot(t *testing.T) {
	s := NewFor("apmtel", "prod")
	want := Slot(s.Runs())
	for _, k := range append(s.RunKeys("sched-20261126T120000Z"), s.Latest(), s.LastGood(), s.Counters(), s.SearchSlots()) {
		if got := Slot(k); got != want {
			t.Errorf("%s: slot %d, want %d", k, got, want)
		}
	}
	if Slot(NewFor("apmtel", "other").Runs()) == want && Slot(NewFor("apmtel", "third").Runs()) == want {
		t.Error("different sources should spread over slots")
	}
}

// The fleet's keys share one slot among themselves, and no source name can
// produce them (a source named like the fleet's tag is refused).
func TestFleetKeysOwnSlot(t *testing.T) {
	f := NewFleet("apmtel")
	want := Slot(f.SearchSlots())
	for _, k := range []string{f.SearchQueue(), f.SearchWaiters()} {
		if got := Slot(k); got != want {
			t.Errorf("%s: slot %d, want %d", k, got, want)
		}
	}
	if err := ValidSource(fleetTag); err == nil {
		t.Errorf("source name %q accepted: its keys would be the fleet's", fleetTag)
	}
}

func TestValidRunID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"sched-20261126T120000Z", true},
		{"manual-20261126T221500Z-ab12", true},
		{"", false},
		{"a{b}", false},
		{"-lead", false},
		{"has space", false},
		{strings.Repeat("a", 129), false},
	}
	for _, tc := range tests {
		err := ValidRunID(tc.id)
		if (err == nil) != tc.ok {
			t.Errorf("ValidRunID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
		}
	}
	for _, name := range []string{"default", "prod-eu.1"} {
		if err := ValidSource(name); err != nil {
			t.Error(err)
		}
	}
	for _, name := range []string{"", "Prod", "a{b}", "a b", "-x"} {
		if err := ValidSource(name); err == nil {
			t.Errorf("ValidSource(%q) accepted", name)
		}
	}
}

func TestSlotKnownValues(t *testing.T) {
	// Values from the CLUSTER KEYSLOT examples in Redis's documentation.
	for key, want := range map[string]int{"somekey": 11058, "foo{hash_tag}": Slot("hash_tag"), "foo": 12182} {
		if got := Slot(key); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
	}
}
