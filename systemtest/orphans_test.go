package systemtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/apmtel/apmtel/internal/faultproxy"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/jobs"
)

// A raw id pushed into asynq's active list (no task hash, no lease) is
// removed by a running worker's janitor after APMTEL_ORPHAN_MIN_AGE and
// logged with its id; the collect job that is really active at the same
// time (its search hangs) keeps its entry and its lease.
func TestOrphanJanitorInWorker(t *testing.T) {
	t.Parallel()
	p, purl := startProxy(t)
	s := newStack(t)
	s.loadFixture(t)
	env := s.env(t, purl, "APMTEL_ORPHAN_MIN_AGE=1s")
	p.SetFault(faultproxy.Fault{Mode: "hang", Match: "task=cloud"})
	t.Cleanup(func() { p.SetFault(faultproxy.Fault{Mode: "none"}) })
	w := s.Start("worker-1", env, "worker")
	id := startRun(t, env, "cloud")
	real := jobs.CollectID("", id, "cloud")
	s.Eventually(15*time.Second, "the cloud job to be active", func() bool {
		info, err := s.insp.GetTaskInfo(jobs.QueueCollect, real)
		return err == nil && info.State == asynq.TaskStateActive
	})
	ctx := context.Background()
	q := keys.AsynqQueue(jobs.QueueCollect)
	if err := s.rdb.LPush(ctx, q.Active(), "bogus-orphan-1").Err(); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	s.Eventually(15*time.Second, "the janitor to remove the orphan", func() bool {
		ids, _ := s.rdb.LRange(ctx, q.Active(), 0, -1).Result()
		return !strings.Contains(strings.Join(ids, ","), "bogus-orphan-1")
	})
	took := time.Since(began)
	if ids, _ := s.rdb.LRange(ctx, q.Active(), 0, -1).Result(); len(ids) != 1 || ids[0] != real {
		t.Errorf("active list = %v, want only the real job %s", ids, real)
	}
	if _, err := s.rdb.ZScore(ctx, q.Lease(), real).Result(); err != nil {
		t.Errorf("real job lost its lease: %v", err)
	}
	if info, err := s.insp.GetTaskInfo(jobs.QueueCollect, real); err != nil || info.State != asynq.TaskStateActive {
		t.Errorf("real job: %+v, %v; want active", info, err)
	}
	out := w.Output()
	if !strings.Contains(out, "orphaned active entry removed") || !strings.Contains(out, `"job_id":"bogus-orphan-1"`) {
		t.Errorf("worker log does not name the removed orphan:\n%s", out)
	}
	t.Logf("orphan removed %s after the push (APMTEL_ORPHAN_MIN_AGE=1s, sweep every 500ms)", took.Round(10*time.Millisecond))
}
