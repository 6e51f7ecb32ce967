package keys

// AsynqQueue names the keys of one asynq queue that apmtel reads (the
// orphan janitor and the queue metrics, internal/orphans). They mirror
// asynq v0.26's internal/base (ActiveKey, LeaseKey, TaskKeyPrefix), which
// cannot be imported; internal/orphans tests pin them against keys asynq
// writes, so an upgrade that moves them fails a test instead of silently
// finding nothing.
type AsynqQueue string

func (q AsynqQueue) prefix() string { return "asynq:{" + string(q) + "}:" }

// Active is the list of ids of the queue's active tasks.
func (q AsynqQueue) Active() string { return q.prefix() + "active" }

// Lease is the sorted set of active task ids by lease expiry (Unix seconds).
func (q AsynqQueue) Lease() string { return q.prefix() + "lease" }

// TaskPrefix is the prefix of the queue's task hashes: TaskPrefix()+id.
func (q AsynqQueue) TaskPrefix() string { return q.prefix() + "t:" }

// Task is the hash of task id (fields msg, state, …).
func (q AsynqQueue) Task(id string) string { return q.TaskPrefix() + id }

// Pending is the list of the queue's pending task ids.
func (q AsynqQueue) Pending() string { return q.prefix() + "pending" }

// Scheduled is the sorted set of tasks waiting for their time.
func (q AsynqQueue) Scheduled() string { return q.prefix() + "scheduled" }

// Retry is the sorted set of tasks waiting to retry.
func (q AsynqQueue) Retry() string { return q.prefix() + "retry" }

// Archived is the sorted set of archived tasks.
func (q AsynqQueue) Archived() string { return q.prefix() + "archived" }

// Completed is the sorted set of retained completed tasks.
func (q AsynqQueue) Completed() string { return q.prefix() + "completed" }
