// Package spread decides when, inside a schedule slot, each cluster of a
// fleet starts its run, so that neither the source clusters nor the
// telemetry cluster get every cluster at the slot's first second.
//
// A cluster's offset is a stable hash of its name over the spread
// (APMTEL_FLEET_SPREAD, default a quarter of the interval, 0 = all at the
// slot start), as Prometheus places each target at a fixed point of its
// scrape interval: the same in every slot, on every scheduler replica and
// after every restart, so a cluster's runs stay one interval apart and
// replicas agree on the run without talking to each other.
//
// Whether a cluster is due is a separate decision (Due): a cluster whose
// offset already passed in the current slot when the scheduler looks (it
// was down, or just started) still runs in that slot — GitLab's Service
// Ping skipped such runs until its MR !35437 — and a slot only ever runs
// once per cluster, the current one, never the missed ones before it.
package spread
