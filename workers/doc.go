// Package workers holds the asynq handlers of apmtel's jobs (collect,
// finalize, upload), the mux that routes job types to them, the upload's
// retry policy, and the worker process (Process), which assembles, starts
// and stops its own parts: the asynq server, the orphan janitor, the
// cluster-wide search cap and its readiness. The handlers reach a job's
// source cluster through Clusters, by the name the job carries.
//
// Handlers are idempotent because asynq delivers at least once: a collect
// result is stored once per task (store.Record keeps the first final one),
// finalize may run any number of times, and an upload rewrites the same
// document id. Permanent failures (bad payloads, unknown tasks, 4xx answers)
// are wrapped in asynq.SkipRetry; every outcome is also written to the run's
// record in Redis, so no failure is only a log line.
package workers
