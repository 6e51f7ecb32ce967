// Package backoff owns the state of a sick source cluster: after
// APMTEL_FLEET_BACKOFF_AFTER consecutive failed runs (default 3) the
// scheduler stops starting its runs until a time that doubles with every
// further failure, capped at a day, so a cluster that is down or overloaded
// is not given a new run's requests every slot (the pile-up Metricbeat's
// users saw on a sick master: beats#17948). An on-demand run (`apmtel run
// --cluster NAME`) still runs it, and its success ends the backoff.
//
// State and its transitions (Failed, Succeeded) are pure and live here; the
// Store keeps one State per source in Redis, in the source's hash tag,
// written by a compare-and-set script so that the transition is computed in
// one place (Go) and applied atomically, once per run.
package backoff
