package jobs_test

import (
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/jobs"
)

// asynq stores a scheduled job's time in whole seconds and runs it once the
// clock's second reaches it; a deadline finalize must never become due
// before the run's deadline (it sealed a run 720 ms early in CI).
func TestFinalizeNeverDueBeforeDeadline(t *testing.T) {
	t.Parallel()
	_, db := testenv.RedisDB(t)
	opt := asynq.RedisClientOpt{Addr: testenv.RedisAddr(t), DB: db}
	cl, insp := asynq.NewClient(opt), asynq.NewInspector(opt)
	t.Cleanup(func() { cl.Close(); insp.Close() })
	base := time.Now().Add(time.Hour).Truncate(time.Second)
	for _, tc := range []struct {
		name     string
		deadline time.Time
		due      time.Time
	}{
		{"whole second", base, base},
		{"just after a second", base.Add(time.Millisecond), base.Add(time.Second)},
		{"just before a second", base.Add(999 * time.Millisecond), base.Add(time.Second)},
	} {
		p := jobs.RunPayload{RunID: "r-" + tc.deadline.Format("150405.000"), Reason: jobs.ReasonDeadline}
		task, err := jobs.NewFinalize(p, tc.deadline, config.Default().Timing())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Enqueue(task); err != nil {
			t.Fatal(err)
		}
		info, err := insp.GetTaskInfo(jobs.QueueControl, jobs.FinalizeID("", p.RunID, p.Reason))
		if err != nil {
			t.Fatal(err)
		}
		if info.State != asynq.TaskStateScheduled || !info.NextProcessAt.Equal(tc.due) || info.NextProcessAt.Before(tc.deadline) {
			t.Errorf("%s: deadline %s: %v due %s, want scheduled, due %s", tc.name, tc.deadline.Format("15:04:05.000"),
				info.State, info.NextProcessAt.Format("15:04:05.000"), tc.due.Format("15:04:05.000"))
		}
	}
}
