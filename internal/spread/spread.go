package spread

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"
)

// DefaultSpread is the spread when APMTEL_FLEET_SPREAD is not set: a
// quarter of the interval, which leaves three quarters of every slot for
// the runs to finish before the next slot's first start.
func DefaultSpread(interval time.Duration) time.Duration { return interval / 4 }

// Validate checks APMTEL_FLEET_SPREAD against the interval: a spread as
// long as the interval would start some clusters in the next slot.
func Validate(spread, interval time.Duration) error {
	switch {
	case spread < 0:
		return fmt.Errorf("APMTEL_FLEET_SPREAD: must not be negative, got %s", spread)
	case spread >= interval:
		return fmt.Errorf("APMTEL_FLEET_SPREAD: %s must be shorter than APMTEL_INTERVAL %s", spread, interval)
	}
	return nil
}

// Offset is when, after its slot's start, the cluster named name starts:
// the first 8 bytes of SHA-256(name), modulo the spread, in whole
// milliseconds. The interval bounds the spread (a spread of interval or
// more is cut to interval − 1 ms) so the offset stays inside the slot.
// The hash is fixed forever: changing it would move every cluster's runs.
func Offset(name string, interval, spread time.Duration) time.Duration {
	if interval > 0 && spread >= interval {
		spread = interval - time.Millisecond
	}
	ms := uint64(spread / time.Millisecond)
	if ms == 0 {
		return 0
	}
	h := sha256.Sum256([]byte(name))
	return time.Duration(binary.BigEndian.Uint64(h[:8])%ms) * time.Millisecond
}

// Due reports whether a cluster runs now in the slot starting at
// slotStart: its offset has been reached — however long ago, so a
// scheduler that starts late in the slot still runs it — and its last
// scheduled run (lastRunSlot, the zero time for none) is not of this slot
// or a later one. Slots before the current one are never run: after a
// downtime a cluster catches up with the current slot only.
func Due(now, slotStart time.Time, offset time.Duration, lastRunSlot time.Time) bool {
	if !lastRunSlot.IsZero() && !lastRunSlot.Before(slotStart) {
		return false
	}
	return !now.Before(slotStart.Add(offset))
}

// SlotStart is the start of the slot holding t; slots are aligned to the
// Unix epoch, as the scheduler's are, so every replica computes the same.
func SlotStart(t time.Time, interval time.Duration) time.Time {
	ms := interval.Milliseconds()
	if ms <= 0 {
		return t.UTC()
	}
	return time.UnixMilli(t.UnixMilli() - t.UnixMilli()%ms).UTC()
}

// NextDue is when the cluster runs next on schedule: its time in the
// current slot when that slot has not run yet (now or earlier when it is
// overdue: Due says it runs at once), else its time in the next slot.
func NextDue(now time.Time, interval, offset time.Duration, lastRunSlot time.Time) time.Time {
	slot := SlotStart(now, interval)
	if lastRunSlot.IsZero() || lastRunSlot.Before(slot) {
		return slot.Add(offset)
	}
	return slot.Add(interval).Add(offset)
}
