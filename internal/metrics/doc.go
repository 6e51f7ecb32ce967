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
// Prometheus reads as a counter reset. apmtel_runs_total and
// apmtel_uploads_total are therefore counted where runs and uploads end: the
// seal, cancel and upload scripts increment a counter hash in Redis in the
// same step (run.Counters), and the monitor exports it as is — exact however
// many runs end between two scrapes, and the same from every monitor. The
// attempts and duration histograms are observed once per run, when it is
// first seen terminal in the history (a set of the runs counted, pruned to
// the history), into in-process metrics that start with the monitor.
//
// A fleet's clusters get a few gauges each (Clusters), the only series with
// a cluster label, bounded by APMTEL_METRICS_CLUSTER_LIMIT with the clusters
// beyond it counted; the metrics above keep their labels.
package metrics
