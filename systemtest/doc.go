// Package systemtest runs apmtel end to end: the built binary as separate
// scheduler and worker processes, against the real Redis and search engine
// started by scripts/services.sh, on fixture data whose expected telemetry
// the tests compute themselves.
package systemtest
