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
// Wake-ups: a released slot is announced on a pub/sub channel
// (keys.Space.SearchWake); each announcement moves every waiter one place
// up, and a waiter whose turn has come tries at once instead of at its next
// poll. Before this, the poll (up to 100 ms for waiters far back) was dead
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
package limiter
