// Package failpoint lets the fault suite crash a real process at a named
// step ("kill the worker between the completing record and the finalize
// enqueue"), which no signal sent from outside can hit reliably.
//
// A failpoint is armed only by APMTEL_FAILPOINTS (comma-separated names),
// read once at start; unset, Hit is one map lookup on an empty map. The
// variable is for tests; it is documented so that nobody sets it by accident.
package failpoint

import (
	"os"
	"strings"
	"syscall"
)

var armed = parse(os.Getenv("APMTEL_FAILPOINTS"))

func parse(v string) map[string]bool {
	m := map[string]bool{}
	for _, n := range strings.Split(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			m[n] = true
		}
	}
	return m
}

// Names of the failpoints.
const (
	// AfterCompletingRecord: a worker stored the last pending task's final
	// record and has not enqueued finalize yet.
	AfterCompletingRecord = "after-completing-record"
	// AfterClose: finalize closed the run and has not sealed it yet.
	AfterClose = "after-close"
)

// Hit kills the process with SIGKILL when name is armed: no deferred
// function, no graceful shutdown, exactly like a crash.
func Hit(name string) {
	if armed[name] {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}
