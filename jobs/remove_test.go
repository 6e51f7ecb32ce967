package jobs_test

import (
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/jobs"
)

// Jobs that have not run, or were archived, are deleted; a job that does
// not exist is no error.
func TestRemoveUnlessRunning(t *testing.T) {
	t.Parallel()
	_, db := testenv.RedisDB(t)
	opt := asynq.RedisClientOpt{Addr: testenv.RedisAddr(t), DB: db}
	cl, insp := asynq.NewClient(opt), asynq.NewInspector(opt)
	t.Cleanup(func() { cl.Close(); insp.Close() })
	enqueue := func(id string, opts ...asynq.Option) {
		t.Helper()
		if _, err := cl.Enqueue(asynq.NewTask("x", nil), append(opts, asynq.Queue(jobs.QueueControl), asynq.TaskID(id))...); err != nil {
			t.Fatal(err)
		}
	}
	enqueue("pending")
	enqueue("scheduled", asynq.ProcessIn(time.Hour))
	enqueue("archived")
	if err := insp.ArchiveTask(jobs.QueueControl, "archived"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id      string
		state   asynq.TaskState
		removed bool
	}{
		{"pending", asynq.TaskStatePending, true},
		{"scheduled", asynq.TaskStateScheduled, true},
		{"archived", asynq.TaskStateArchived, true},
		{"absent", 0, false},
	} {
		state, removed, err := jobs.RemoveUnlessRunning(insp, jobs.QueueControl, tc.id)
		if err != nil || state != tc.state || removed != tc.removed {
			t.Errorf("%s: state %v removed %v err %v; want %v %v", tc.id, state, removed, err, tc.state, tc.removed)
		}
		if _, err := insp.GetTaskInfo(jobs.QueueControl, tc.id); err == nil {
			t.Errorf("%s: still there", tc.id)
		}
	}
}
