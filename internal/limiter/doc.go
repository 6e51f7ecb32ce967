// Package limiter caps the number of requests all workers send to the
// source cluster at once, with a counting semaphore in Redis. Kibana runs
// its telemetry strictly one request at a time to spare customers' clusters;
// apmtel runs tasks in parallel on many workers, so the cap is what keeps the
// load on the customer's cluster bounded however many workers run.
//
// Each slot is a lease (a sorted-set member scored by its expiry), so a
// worker that dies holding slots loses them when the lease runs out.
package limiter
