// Package jobs is the contract between the scheduler, the CLI and the
// workers: job type names, queue names, payloads and constructors that bake
// in each job's asynq options (queue, task id, timeout, retries, retention).
//
// Type names are stable strings: a job enqueued by one release must be
// understood by the next, so they are never renamed. Task ids are derived
// from the run and task, which is what makes enqueueing idempotent: a second
// scheduler replica, or a retried enqueue, gets asynq.ErrTaskIDConflict
// instead of a duplicate job.
package jobs
