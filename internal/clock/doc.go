// Package clock is apmtel's one injected notion of now. Components that
// stamp or compare times (the scheduler, the handlers, finalize, the
// executor, the janitor, the console) take a Clock; a process passes nil,
// the wall clock, and tests pass a fixed or stepped one.
package clock
