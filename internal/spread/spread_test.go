package spread

import (
	"fmt"
	"testing"
	"time"
)

func TestOffsetStableBoundedAndSpread(t *testing.T) {
	t.Parallel()
	const interval = 12 * time.Hour
	spread := DefaultSpread(interval)
	// Pinned values: the hash must never change, or every cluster's runs move.
	for name, want := range map[string]time.Duration{
		"default": time.Hour + 48*time.Minute + 17149*time.Millisecond,
		"prod-eu": 2*time.Hour + 27*time.Minute + 53136*time.Millisecond,
	} {
		if got := Offset(name, interval, spread); got != want {
			t.Fatalf("Offset(%s) = %s, want %s", name, got, want)
		}
	}
	buckets := make([]int, 10)
	for i := range 1000 {
		o := Offset(fmt.Sprintf("cluster-%04d", i), interval, spread)
		if o < 0 || o >= spread || o%time.Millisecond != 0 {
			t.Fatalf("offset %s outside [0, %s) or not whole ms", o, spread)
		}
		buckets[int(o*10/spread)]++
	}
	for i, n := range buckets {
		if n < 60 || n > 140 {
			t.Fatalf("bucket %d holds %d of 1000 offsets (want about 100): %v", i, n, buckets)
		}
	}
	for _, tc := range []struct {
		interval, spread, max time.Duration
	}{
		{interval, 0, 0},
		{interval, time.Millisecond / 2, 0},
		{time.Minute, time.Hour, time.Minute - time.Millisecond},
	} {
		for i := range 100 {
			if o := Offset(fmt.Sprint(i), tc.interval, tc.spread); o < 0 || o > tc.max {
				t.Fatalf("interval %s spread %s: offset %s above %s", tc.interval, tc.spread, o, tc.max)
			}
		}
	}
}

func TestPinnedOffsets(t *testing.T) {
	t.Parallel()
	// SHA-256("a")[:8] = 0xca978112ca1bbdca.
	if got, want := Offset("a", 12*time.Hour, 3*time.Hour), time.Duration(0xca978112ca1bbdca%10800000)*time.Millisecond; got != want {
		t.Fatalf("Offset(a) = %s, want %s", got, want)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		spread time.Duration
		ok     bool
	}{{0, true}, {3 * time.Hour, true}, {12*time.Hour - time.Second, true}, {12 * time.Hour, false}, {-time.Second, false}} {
		if err := Validate(tc.spread, 12*time.Hour); (err == nil) != tc.ok {
			t.Fatalf("spread %s: %v", tc.spread, err)
		}
	}
}

func TestDue(t *testing.T) {
	t.Parallel()
	const interval = 12 * time.Hour
	slot := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	prev := slot.Add(-interval)
	off := 90 * time.Minute
	for _, tc := range []struct {
		name    string
		now     time.Time
		slot    time.Time
		offset  time.Duration
		lastRun time.Time
		due     bool
	}{
		{"before its offset", slot.Add(off - time.Nanosecond), slot, off, prev, false},
		{"at its offset", slot.Add(off), slot, off, prev, true},
		{"after its offset", slot.Add(off + time.Minute), slot, off, prev, true},
		{"already ran in this slot", slot.Add(off + time.Minute), slot, off, slot, false},
		{"ran in a later slot (clock skew)", slot.Add(off), slot, off, slot.Add(interval), false},
		{"never ran", slot.Add(off), slot, off, time.Time{}, true},
		{"never ran, before offset", slot, slot, off, time.Time{}, false},
		{"spread 0: at the slot start", slot, slot, 0, prev, true},
		{"spread 0: just before the slot (previous slot done)", slot.Add(-time.Nanosecond), prev, 0, prev, false},
		// Catch-up (GitLab MR !35437): the scheduler was down at the
		// cluster's time and starts late in the slot: it still runs.
		{"catch-up late in the slot", slot.Add(interval - time.Second), slot, off, prev, true},
		// After a long downtime: the current slot runs once, not each missed one.
		{"catch-up after three missed slots", slot.Add(off), slot, off, slot.Add(-3 * interval), true},
		{"now before the slot given", slot.Add(-time.Minute), slot, 0, prev, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Due(tc.now, tc.slot, tc.offset, tc.lastRun); got != tc.due {
				t.Fatalf("Due = %v, want %v", got, tc.due)
			}
		})
	}
}

func TestSlotStartAndNextDue(t *testing.T) {
	t.Parallel()
	const interval = 12 * time.Hour
	slot := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	off := 90 * time.Minute
	for _, tc := range []struct {
		name    string
		now     time.Time
		lastRun time.Time
		want    time.Time
	}{
		{"slot start is in the slot", slot, slot.Add(-interval), slot.Add(off)},
		{"last ns of the slot belongs to it", slot.Add(interval - time.Nanosecond), slot, slot.Add(interval + off)},
		{"not yet run this slot", slot.Add(time.Minute), slot.Add(-interval), slot.Add(off)},
		{"overdue: its time in this slot, already past", slot.Add(5 * time.Hour), slot.Add(-interval), slot.Add(off)},
		{"ran: the next slot", slot.Add(5 * time.Hour), slot, slot.Add(interval + off)},
		{"never ran", slot.Add(time.Minute), time.Time{}, slot.Add(off)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s := SlotStart(tc.now, interval); s != slot {
				t.Fatalf("SlotStart(%s) = %s", tc.now, s)
			}
			if got := NextDue(tc.now, interval, off, tc.lastRun); !got.Equal(tc.want) {
				t.Fatalf("NextDue = %s, want %s", got, tc.want)
			}
		})
	}
}
