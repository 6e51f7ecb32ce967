// Package orphans finds and removes raw entries in asynq's active lists that
// no asynq process will ever move: an id in "asynq:{<queue>}:active" whose
// task hash is missing or does not hold a task message — left by a crash, an
// eviction, a manual LPUSH or a version skew.
//
// asynq's recoverer works from the lease set, so an entry without a lease is
// never recovered, and asynq's queue size (LLEN of the list) counts it as
// active forever. The queue metrics (internal/metrics) subtract such entries
// from the active count and report them as apmtel_queue_orphaned_jobs; the
// Janitor, run by every worker, unlinks an entry that has had no usable task
// hash and no lease for MinAge. A task hash that is there but undecodable is
// kept (logged with its key) for an operator to inspect: the janitor only
// removes the list entry, never data it cannot read. A real active task has
// a hash and a lease (asynq writes the three in one script) and is never
// touched.
package orphans
