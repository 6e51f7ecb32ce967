package systemtest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/apmtel/apmtel/internal/faultproxy"
	"github.com/apmtel/apmtel/internal/run"
)

// The only worker running a task's attempt is frozen (SIGSTOP) past the
// run's deadline while the attempt hangs at the source; a second worker,
// started after the freeze, runs the deadline's finalize (the frozen job
// stays leased to the frozen worker: asynq recovers it only after its
// lease, far past the deadline). The sealed run never shows that attempt
// running (issue 24, item 6): the seal closes it with the task's final
// record, timeout by the run's deadline, finished by the seal. An attempt
// superseded by a later attempt of its task is closed as abandoned instead
// (run.TestSealAbandonsRunningAttempts); here none is. When the frozen
// worker is resumed, its late outcome is refused: the sealed attempt stays.
func TestFaultFrozenWorkerAttemptSealedNotRunning(t *testing.T) {
	t.Parallel()
	const deadline = 6 * time.Second
	p, purl := startProxy(t)
	s := newStack(t)
	s.loadFixture(t)
	env := s.env(t, purl, "APMTEL_TASK_TIMEOUT="+deadline.String(), "APMTEL_RUN_DEADLINE="+deadline.String())
	a := s.Start("worker-a", env, "worker")
	resume := sync.OnceFunc(func() { _ = a.Cmd.Process.Signal(syscall.SIGCONT) })
	t.Cleanup(resume) // before the stack's SIGTERM: a stopped process never exits
	p.SetFault(faultproxy.Fault{Mode: "hang", Match: "task=cloud"})
	id := startRun(t, env, "--task", "cloud")
	s.waitInFlight(t, p, 1)
	ctx := context.Background()
	s.Eventually(10*time.Second, "the attempt to be recorded running", func() bool {
		att, err := s.st.Attempts(ctx, id)
		return err == nil && len(att) == 1 && att[0].Status == run.TaskRunning
	})
	if err := a.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	s.Start("worker-b", env, "worker")
	r := s.waitRun(t, id, 60*time.Second, "the deadline seal", finalized)
	if r.CloseReason != run.ReasonDeadline {
		t.Errorf("closed by %q, want the deadline", r.CloseReason)
	}
	late := r.SealedAt.Sub(r.Deadline)

	att, err := s.st.Attempts(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(att) != 1 {
		t.Fatalf("%d attempts, want the frozen one only (another worker ran the task): %+v", len(att), att)
	}
	got := att[0]
	if got.Status != run.TaskTimeout || got.Attempt != 1 || got.Worker == "" || got.StartedAt.IsZero() ||
		got.FinishedAt.Before(r.Deadline) || got.FinishedAt.After(r.SealedAt) || !strings.Contains(got.Error, "APMTEL_RUN_DEADLINE") {
		t.Errorf("sealed attempt %+v, want timeout by the run deadline, finished between the deadline %s and the seal %s", got, r.Deadline, r.SealedAt)
	}
	if rec := s.results(t, id)["cloud"]; rec.Status != run.TaskTimeout || rec.Deadline != run.DeadlineRun || rec.Attempt != 1 {
		t.Errorf("cloud = %+v, want timeout by the run deadline on attempt 1", rec)
	}

	// The frozen worker wakes up: its request is cancelled and its late
	// outcome refused; the sealed attempts do not change.
	resume()
	s.Eventually(10*time.Second, "the resumed worker's request to close", func() bool { return p.Stats().InFlight == 0 })
	time.Sleep(time.Second)
	after, err := s.st.Attempts(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(att, after); d != "" {
		t.Errorf("a sealed run's attempts changed after the frozen worker resumed (-sealed +after):\n%s", d)
	}
	for _, x := range after {
		if x.Status == run.TaskRunning || x.FinishedAt.IsZero() {
			t.Errorf("sealed run has an open attempt: %+v", x)
		}
	}
	t.Logf("sealed %s after the %s deadline; attempt %s: %s", late.Round(10*time.Millisecond), deadline, got.Status, got.Error)
	fmt.Fprintf(os.Stderr, "MEASURE frozen worker past the run deadline (%s): sealed %s after the deadline, attempt %s\n",
		deadline, late.Round(10*time.Millisecond), got.Status)
}
