// Package limiter caps the number of requests all workers send to the
// source cluster at once, with a counting semaphore in Redis. Kibana runs
// its telemetry strictly one request at a time to spare customers' clusters;
// apmtel runs tasks in parallel on many workers, and requests in parallel
// inside tasks, so the cap is what keeps the load on the customer's cluster
// bounded however many workers and goroutines run.
//
// Fairness: a request that finds no free slot takes a ticket in a queue
// ordered by arrival (Redis time); slots go out strictly in ticket order, so
// no request can starve, and a waiting request holds no slot. Requests of
// one telemetry task (InTaskOrder, set by the executor) queue at the task's
// start (oldest task first, in Redis time via each process's measured
// offset): a task's dependent next request goes ahead of the fan-out of
// tasks that started later instead of behind it (measured: the second
// of aggregated_transactions' seven chained requests waited 3.6 s behind a
// hundred others, and the run waited for it).
//
// Wake-ups: a released slot is handed on and announced in the releaser's
// one script: the ticket whose turn it is becomes the holder, and the
// announcement on a pub/sub channel (keys.Space.SearchWake) names it, so
// its waiter starts its request without another call (2 round trips per
// request: acquire, release). Each announcement also moves every other
// waiter one place up, and a waiter whose turn has come tries at once
// instead of at its next poll. Before this, the poll (up to 100 ms for waiters far back) was dead
// time at every hand-over: a serial preview spent 1.8 s of its 4.3 s
// between requests. Polling stays as the fallback for what is not announced
// (expired leases) and for a lost subscription.
//
// Leases: a slot is a short lease (Options.Lease, 5 s by default) that its
// holder renews every third of a lease while the request runs (heartbeat);
// a queued ticket is a lease too (Options.WaiterLease, 3 s), renewed by each
// poll. A process that dies (SIGKILL, power loss) stops renewing, so:
//
//	its slots are free again at most Lease + one poll (≤ 5.1 s) after its death;
//	its queued tickets stop blocking others at most WaiterLease (3 s) after it.
//
// A holder whose lease could not be renewed has its request's context
// cancelled with ErrLeaseLost rather than run over the cap: the holder keeps
// its own clock of the lease and gives up a sixth of a lease before Redis
// would let the slot go (Redis unreachable for 5/6 of a lease), or, after a
// freeze (SIGSTOP, a paused VM), the moment it runs again, without a round
// trip. A frozen holder is the one case the cap cannot cover: it cannot
// close its requests while frozen, so the source sees at most the cap plus
// the frozen holder's requests, from one lease into the freeze until it
// resumes (docs/reliability.md has the measurement and why longer leases
// were not the answer).
//
// Fleet (Options.Fleet, APMTEL_FLEET_CONCURRENCY): a deployment collecting
// from many source clusters caps each cluster by its own Semaphore and all
// of them together by one Fleet, a second semaphore of the same kind. A
// request holds both a slot of its cluster and one of the fleet, and never
// holds one while it waits for the other:
//
//  1. its cluster's script hands it the cluster's slot when its turn in
//     that cluster's queue has come (the ticket waits there otherwise,
//     holding nothing);
//  2. the fleet's script, at once, hands it a fleet slot, or queues the
//     ticket in the fleet's queue at the same place (oldest task first,
//     fleet-wide);
//  3. if the fleet had none, the cluster's slot goes back at once and the
//     ticket is queued again at its old place, still first in its
//     cluster's queue; it then asks the fleet alone (a peek that takes
//     nothing) until its turn there has come, and starts again at 1.
//
// Why two scripts and not one: each cluster's keys carry its own hash tag,
// so they live in that cluster's Redis Cluster slot, and a script may only
// touch keys of one slot. The fleet's keys cannot share every cluster's
// slot, so they have a slot of their own (keys.Fleet) and one script can
// never take both. The order above makes the two steps behave as one: the
// cluster's slot is held for one round trip before the fleet answers, and
// is given back unless the fleet granted; a waiter of the fleet holds no
// cluster slot, and a waiter of its cluster is not in the fleet's queue (a
// ticket that stops being first in its cluster leaves the fleet's queue).
// So neither cap waits on the other, no slot is held by a request that
// cannot run, and there is no queue per cluster in the job queues: every
// job waits in the limiter, in the one order. A process that dies between
// the steps leaves at most a slot that its lease frees, as any holder's.
// Without a Fleet none of this runs: one script, as for a single cluster.
package limiter
