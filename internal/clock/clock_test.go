package clock

import (
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	fixed := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	if got := Clock(func() time.Time { return fixed }).Now(); !got.Equal(fixed) {
		t.Errorf("a fixed clock says %s", got)
	}
	var wall Clock
	before := time.Now()
	if got := wall.Now(); got.Before(before) || got.After(time.Now()) {
		t.Errorf("the nil clock says %s, not the wall clock", got)
	}
}
