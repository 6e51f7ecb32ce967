package clock

import "time"

// Clock returns the current time; the nil Clock is the wall clock.
type Clock func() time.Time

// Now is c's current time (time.Now for a nil Clock).
func (c Clock) Now() time.Time {
	if c == nil {
		return time.Now()
	}
	return c()
}
