package keys

import (
	"strings"
	"testing"
)

func TestKeys(t *testing.T) {
	s := New("")
	tests := []struct{ got, want string }{
		{s.Run("r1"), "apmtel:run:r1"},
		{s.Results("r1"), "apmtel:run:r1:results"},
		{s.Pending("r1"), "apmtel:run:r1:pending"},
		{s.Snapshot("r1"), "apmtel:run:r1:snapshot"},
		{s.Runs(), "apmtel:runs"},
		{s.Latest(), "apmtel:latest"},
		{s.LastGood(), "apmtel:lastgood"},
		{New("x").Run("r"), "x:run:r"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	if n := len(s.RunKeys("r")); n != 4 {
		t.Errorf("RunKeys: got %d keys, want 4", n)
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
}
