// Package collect runs telemetry tasks and turns their records into a
// telemetry object. It is the one place that knows how one task is executed
// — its timeout, the run's deadline, the X-Opaque-Id label, the cluster-wide
// search limiter, and how an error is classified (ok, failed, timeout and
// which deadline fired, permanent or retryable) — so that a worker's job and
// `apmtel preview` behave the same. Finalize (close, assemble, seal) lives
// here too, as the sequence of run transitions it is.
package collect
