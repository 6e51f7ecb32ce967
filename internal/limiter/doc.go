// Package limiter caps the number of requests all workers send to the
// source cluster at once, with a counting semaphore in Redis. Kibana runs
// its telemetry strictly one request at a time to spare customers' clusters;
// apmtel runs tasks in parallel on many workers, and requests in parallel
// inside tasks, so the cap is what keeps the load on the customer's cluster
// bounded however many workers and goroutines run.
//
// Fairness: a request that finds no free slot takes a ticket in a queue
// ordered by arrival (Redis time); slots go out strictly in ticket order, so
// no request can starve, and a waiting request holds no slot.
//
// Leases: a slot is a short lease (Options.Lease, 5 s by default) that its
// holder renews every third of a lease while the request runs (heartbeat);
// a queued ticket is a lease too (Options.WaiterLease, 3 s), renewed by each
// poll. A process that dies (SIGKILL, power loss) stops renewing, so:
//
//	its slots are free again at most Lease + one poll (≤ 5.1 s) after its death;
//	its queued tickets stop blocking others at most WaiterLease (3 s) after it.
//
// A holder whose lease could not be renewed (Redis unreachable for 2/3 of a
// lease) has its request's context cancelled with ErrLeaseLost rather than
// run over the cap.
package limiter
