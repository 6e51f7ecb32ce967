package jobs

import (
	"errors"

	"github.com/hibiken/asynq"
)

// Remover is the part of asynq.Inspector that removes a job.
type Remover interface {
	GetTaskInfo(queue, id string) (*asynq.TaskInfo, error)
	DeleteTask(queue, id string) error
}

// RemoveUnlessRunning is the one rule for deleting one of apmtel's jobs
// (a cancelled run's jobs, a sealed run's deadline finalize): a job that
// runs (active) is left to its handler, which finds its run ended, and a
// completed one is kept on purpose, since its retained id deduplicates
// enqueues; any other — pending, scheduled, waiting to retry, archived — is
// deleted. It returns the state the job was found in (0 when there is no
// such job, which is no error) and whether it was deleted.
func RemoveUnlessRunning(r Remover, queue, id string) (asynq.TaskState, bool, error) {
	info, err := r.GetTaskInfo(queue, id)
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if info.State == asynq.TaskStateActive || info.State == asynq.TaskStateCompleted {
		return info.State, false, nil
	}
	err = r.DeleteTask(queue, id)
	if errors.Is(err, asynq.ErrTaskNotFound) {
		// Another caller removed it, or it ran meanwhile.
		return info.State, false, nil
	}
	return info.State, err == nil, err
}
