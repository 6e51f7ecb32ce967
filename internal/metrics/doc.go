// Package metrics is apmtel's Prometheus exposition, built on
// prometheus/client_golang.
//
// Every process (worker, scheduler, monitor) exports its own Go and process
// metrics, apmtel_build_info and the queue gauges read through asynq's
// Inspector, less the orphaned active entries internal/orphans finds (asynq
// counts them as active forever, and cannot read a queue holding one near
// the head of a list). Runs are different: they are written to Redis by many processes
// (each worker records its own attempts, whichever finalizer wins seals), so
// no process sees them all happen. The monitor therefore reads the run
// history from Redis at scrape time (Runs) and turns it into counters and
// histograms.
//
// The history cannot simply be exported as constant counters: it is trimmed
// to APMTEL_HISTORY_LIMIT runs, so a count of runs in the history stops
// growing once the limit is reached and drops when a run is trimmed, which
// Prometheus reads as a counter reset. Runs instead counts each run once,
// when it is first seen terminal (sealed or cancelled), into ordinary
// in-process counters and histograms, keeping a set of the runs it counted;
// the set is pruned to the runs still in the history, which never come back
// once gone. Counters thus grow monotonically for the life of the monitor
// and start from the history it finds at start-up, as any process's
// counters start at its start.
//
// A fleet's clusters get a few gauges each (Clusters), the only series with
// a cluster label, bounded by APMTEL_METRICS_CLUSTER_LIMIT with the clusters
// beyond it counted; the metrics above keep their labels.
package metrics
