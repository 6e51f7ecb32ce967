package systemtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/faultproxy"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/jobs"
)

func payloadFiles(t *testing.T, env []string) []string {
	t.Helper()
	for _, kv := range env {
		if dir, ok := strings.CutPrefix(kv, "APMTEL_DATA_DIR="); ok {
			files, _ := filepath.Glob(filepath.Join(dir, "payloads", "*.json"))
			return files
		}
	}
	t.Fatal("no APMTEL_DATA_DIR in env")
	return nil
}

// Full, partial and dry runs: only a full run becomes latest and is sent;
// a partial run refreshes last good values; `run --wait` exits 0 for each
// and prints live task states; cancelling a sealed run exits 1.
func TestLifecycleFullPartialDryRuns(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.loadFixture(t)
	env := s.env(t, testenv.ESURL(t))
	s.Start("worker-1", env, "worker")

	out, stderr, code := testenv.Exec(t, env, "run", "--wait")
	if code != 0 {
		t.Fatalf("full run --wait: exit %d\n%s\n%s", code, out, stderr)
	}
	full := strings.SplitN(out, "\n", 2)[0]
	if !strings.Contains(stderr, "worker(s) connected") || !strings.Contains(stderr, "running (attempt 1/") && !strings.Contains(stderr, " ok ") {
		t.Errorf("live progress missing:\n%s", stderr)
	}
	if !strings.Contains(out, "upload written to ") || !strings.Contains(out, "21/21 tasks ok") {
		t.Errorf("summary:\n%s", out)
	}
	if n := len(payloadFiles(t, env)); n != 1 {
		t.Fatalf("%d payload files after the full run, want 1", n)
	}
	latest, _, err := s.st.Latest(context.Background())
	if err != nil || latest != full {
		t.Fatalf("latest = %s (%v), want the full run %s", latest, err, full)
	}

	// Partial: reported and waited for, never latest, never sent.
	out, stderr, code = testenv.Exec(t, env, "run", "cloud", "--wait", "--json")
	if code != 0 {
		t.Fatalf("partial run: exit %d\n%s\n%s", code, out, stderr)
	}
	var got struct {
		Run   run.Run                   `json:"run"`
		Tasks map[string]run.TaskRecord `json:"tasks"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &got); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if got.Run.Kind != run.KindPartial || got.Run.Upload.String() != "skipped (partial)" || len(got.Tasks) != 1 || got.Tasks["cloud"].Status != run.TaskOK {
		t.Errorf("partial run %+v tasks %+v", got.Run, got.Tasks)
	}
	if latest, _, _ := s.st.Latest(context.Background()); latest != full {
		t.Errorf("a partial run became latest: %s", latest)
	}
	snap, stderr, code := testenv.Exec(t, env, "snapshot")
	var m map[string]any
	if code != 0 || json.Unmarshal([]byte(snap), &m) != nil || len(m) < 15 {
		t.Errorf("latest snapshot after a partial run: exit %d, %d keys: %s", code, len(m), stderr)
	}
	if n := len(payloadFiles(t, env)); n != 1 {
		t.Errorf("%d payload files after a partial run, want 1", n)
	}

	// Dry run: every task, stored, never sent.
	out, stderr, code = testenv.Exec(t, env, "run", "--no-upload", "--wait")
	if code != 0 || !strings.Contains(out, "upload skipped (dry run)") || !strings.Contains(out, "(dry-run)") {
		t.Errorf("dry run: exit %d\n%s\n%s", code, out, stderr)
	}
	if n := len(payloadFiles(t, env)); n != 1 {
		t.Errorf("%d payload files after a dry run, want 1", n)
	}
	if latest, _, _ := s.st.Latest(context.Background()); latest != full {
		t.Errorf("a dry run became latest: %s", latest)
	}
	// `--opt-in` belongs to the workers: refused, nothing enqueued.
	if _, stderr, code := testenv.Exec(t, env, "run", "--opt-in", "false"); code != 2 || !strings.Contains(stderr, "--no-upload") {
		t.Errorf("run --opt-in false: exit %d, %q", code, stderr)
	}
	// `snapshot RUN --report` shows that run's record, flags after the id.
	out, stderr, code = testenv.Exec(t, env, "snapshot", full, "--report", "--json")
	if code != 0 || !strings.Contains(out, `"id": "`+full+`"`) || !strings.Contains(out, `"attempts"`) {
		t.Errorf("snapshot RUN --report: exit %d, %s %s", code, out, stderr)
	}
	if _, stderr, code := testenv.Exec(t, env, "cancel", full); code != 1 || !strings.Contains(stderr, "already finalized") {
		t.Errorf("cancel of a sealed run: exit %d, %q", code, stderr)
	}
	if runs, _ := s.st.List(context.Background(), 10); len(runs) != 3 {
		t.Errorf("%d runs, want 3", len(runs))
	}
}

// `run --wait` with no worker connected warns within 5 s, says how to start
// one, and exits 1 after --timeout.
func TestLifecycleWaitWithoutWorker(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	env := s.env(t, testenv.ESURL(t))
	// Runs never overlap: with a full run open, `apmtel run` follows it.
	first := startRun(t, env)
	out, stderr, code := testenv.Exec(t, env, "run")
	if code != 0 || strings.TrimSpace(out) != first || !strings.Contains(stderr, "already in progress") {
		t.Errorf("second full run: exit %d, %q %q; want the open run %s followed", code, out, stderr, first)
	}
	if out, _, _ := testenv.Exec(t, env, "run", "--force"); strings.TrimSpace(out) == first {
		t.Errorf("--force did not start another full run")
	}
	cmd := exec.Command(testenv.Binary(t), "run", "cloud", "--wait", "--timeout", "6s")
	cmd.Env = env
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var warnedAfter time.Duration
	var all strings.Builder
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		all.WriteString(sc.Text() + "\n")
		if warnedAfter == 0 && strings.Contains(sc.Text(), "no worker connected") {
			warnedAfter = time.Since(began)
		}
	}
	err = cmd.Wait()
	took := time.Since(began)
	code = cmd.ProcessState.ExitCode()
	if warnedAfter == 0 || warnedAfter > 5*time.Second || !strings.Contains(all.String(), "apmtel worker") {
		t.Errorf("warning after %s (want ≤ 5s) in:\n%s", warnedAfter, all.String())
	}
	if code != 1 || took < 6*time.Second || !strings.Contains(all.String(), "gave up waiting after 6s") {
		t.Errorf("exit %d after %s (%v), want 1 after the 6s timeout:\n%s", code, took, err, all.String())
	}
	fmt.Fprintf(os.Stderr, "MEASURE no-worker warning after %s; exit %d after %s\n", warnedAfter.Round(10*time.Millisecond), code, took.Round(100*time.Millisecond))
}

// The telemetry cluster refuses uploads past the retry window: the upload
// is marked failed with its error, listed by `runs --pending-upload`, and
// `apmtel upload RUN` delivers exactly one document later — with the
// source cluster down, since its identity was captured at the run's start.
func TestLifecycleUploadWindowSpentThenResend(t *testing.T) {
	t.Parallel()
	srcProxy, srcURL := startProxy(t)
	telProxy, telURL := startProxy(t)
	s := newStack(t)
	s.loadFixture(t)
	index := s.index("telemetry")
	env := s.env(t, srcURL, "APMTEL_TELEMETRY_URL="+telURL, "APMTEL_TELEMETRY_INDEX="+index, "APMTEL_UPLOAD_RETRY_WINDOW=3s")
	telProxy.SetFault(faultproxy.Fault{Mode: "status", Status: 503, Match: "/_doc/"})
	s.Start("worker-1", env, "worker")
	id := startRun(t, env)
	r := s.waitRun(t, id, 2*time.Minute, "the upload to fail for good", func(r run.Run) bool { return r.Upload.State == run.UploadFailed })
	if !strings.Contains(r.Upload.Error, "APMTEL_UPLOAD_RETRY_WINDOW") || !strings.Contains(r.Upload.Error, "503") || r.Upload.Attempt < 1 {
		t.Errorf("failed upload %+v", r.Upload)
	}
	out, _, code := testenv.Exec(t, env, "runs", "--pending-upload", "--json")
	var pending []run.Run
	if code != 0 || json.Unmarshal([]byte(out), &pending) != nil || len(pending) != 1 || pending[0].ID != id {
		t.Errorf("runs --pending-upload: exit %d, %s", code, out)
	}
	// No retry is left behind for the failed upload.
	if info, err := s.insp.GetTaskInfo(jobs.QueueControl, jobs.UploadID("", id)); err != nil || info.State != asynq.TaskStateArchived {
		t.Errorf("upload job after its window: %+v %v", info, err)
	}
	// The source goes down, the telemetry cluster comes back: re-send.
	srcProxy.SetFault(faultproxy.Fault{Mode: "status", Status: 503})
	telProxy.SetFault(faultproxy.Fault{Mode: "none"})
	if out, stderr, code := testenv.Exec(t, env, "upload", id); code != 0 {
		t.Fatalf("apmtel upload: exit %d %s %s", code, out, stderr)
	}
	r = s.waitRun(t, id, time.Minute, "the re-sent upload", func(r run.Run) bool { return r.Upload.State == run.UploadUploaded })
	if n := countDocs(t, s.es, index); n != 1 {
		t.Errorf("%d documents in the telemetry index, want 1", n)
	}
	if _, stderr, code := testenv.Exec(t, env, "upload", "nosuch"); code != 1 || !strings.Contains(stderr, "not found") {
		t.Errorf("upload of an unknown run: exit %d %q", code, stderr)
	}
}

func countDocs(t *testing.T, c *es.Client, index string) int {
	t.Helper()
	b, err := c.Do(context.Background(), es.Request{Method: "POST", Index: []string{index}, Endpoint: "_search",
		Params: url.Values{"track_total_hits": {"true"}}, Body: map[string]any{"size": 0}, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Hits struct{ Total struct{ Value int } } `json:"hits"`
	}
	_ = json.Unmarshal(b, &res)
	return res.Hits.Total.Value
}

// A worker dies right after recording the run's last task, before it could
// enqueue finalize: the re-delivered job finds nothing pending and enqueues
// it, so the run completes within the lease recovery, not at its deadline.
func TestLifecycleCrashAfterCompletingRecord(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("waits for asynq's lease recovery")
	}
	s := newStack(t)
	s.loadFixture(t)
	env := s.env(t, testenv.ESURL(t))
	a := s.Start("worker-a", append(env, "APMTEL_FAILPOINTS=after-completing-record"), "worker")
	id := startRun(t, env, "cloud")
	began := time.Now()
	if !a.Wait(30 * time.Second) {
		t.Fatal("the failpoint did not kill the worker")
	}
	if res := s.results(t, id); res["cloud"].Status != run.TaskOK {
		t.Fatalf("cloud not recorded before the crash: %+v", res["cloud"])
	}
	s.Start("worker-b", env, "worker")
	r := s.waitRun(t, id, 3*time.Minute, "the run to seal", finalized)
	took := time.Since(began)
	if r.CloseReason != run.ReasonComplete {
		t.Errorf("closed by %q, want complete (the deadline is 30m away)", r.CloseReason)
	}
	fmt.Fprintf(os.Stderr, "MEASURE crash after the completing record: sealed %s later\n", took.Round(time.Second))
}

// scheduledFinalizes lists the control queue's scheduled finalize jobs of run id.
func (s *stack) scheduledFinalizes(t *testing.T, id string) []string {
	t.Helper()
	infos, err := s.insp.ListScheduledTasks(jobs.QueueControl, asynq.PageSize(1000))
	if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
		t.Fatal(err)
	}
	var ids []string
	for _, i := range infos {
		if p, err := jobs.DecodeRun(i.Payload); err == nil && i.Type == jobs.TypeFinalize && p.RunID == id {
			ids = append(ids, i.ID)
		}
	}
	return ids
}

// A run sealed long before its 30 min deadline leaves no deadline finalize
// in asynq's scheduled set (Asynqmon), and its record is the sealed one.
func TestLifecycleEarlySealRemovesDeadlineJob(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.loadFixture(t)
	env := s.env(t, testenv.ESURL(t))
	s.Start("worker-1", env, "worker")
	id := startRun(t, env, "cloud")
	if got := s.scheduledFinalizes(t, id); len(got) != 1 {
		// The run may have sealed already; then the list is empty, which is
		// what is checked below anyway.
		t.Logf("scheduled finalizes right after the start: %v", got)
	}
	r := s.waitRun(t, id, 30*time.Second, "the run to seal and upload", func(r run.Run) bool { return finalized(r) && r.Upload.State.Ended() })
	if r.CloseReason != run.ReasonComplete || r.Deadline.Sub(r.CreatedAt) != 30*time.Minute {
		t.Fatalf("run closed by %q, deadline %s after creation; want complete, 30m", r.CloseReason, r.Deadline.Sub(r.CreatedAt))
	}
	// The removal follows the seal within the same finalize job.
	s.Eventually(10*time.Second, "the deadline finalize to be removed", func() bool { return len(s.scheduledFinalizes(t, id)) == 0 })
	if _, err := s.insp.GetTaskInfo(jobs.QueueControl, jobs.FinalizeID("", id, jobs.ReasonDeadline)); !errors.Is(err, asynq.ErrTaskNotFound) {
		t.Errorf("deadline finalize of %s: %v, want not found", id, err)
	}
	after, err := s.st.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(r, after); d != "" {
		t.Errorf("sealed record changed (-before +after):\n%s", d)
	}
	info, _ := s.insp.GetQueueInfo(jobs.QueueControl)
	if info.Scheduled != 0 || info.Archived != 0 {
		t.Errorf("control queue: %d scheduled, %d archived, want 0 and 0", info.Scheduled, info.Archived)
	}
}

// More runs than the history limit start within one deadline: nothing of
// any run is left in the control queue — the deadline finalize of a run
// sealed early is removed at its seal, and one that could not be removed
// completes quietly when it finds its run trimmed; nothing is archived.
func TestLifecycleTrimmedRunsDeadlineFinalize(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.loadFixture(t)
	env := s.env(t, testenv.ESURL(t), "APMTEL_HISTORY_LIMIT=2", "APMTEL_TASK_TIMEOUT=3s", "APMTEL_RUN_DEADLINE=4s")
	s.Start("worker-1", env, "worker")
	var ids []string
	for i := 0; i < 6; i++ {
		out, stderr, code := testenv.Exec(t, env, "run", "cloud", "--wait")
		if code != 0 {
			t.Fatalf("run %d: exit %d %s", i, code, stderr)
		}
		ids = append(ids, strings.SplitN(out, "\n", 2)[0])
	}
	s.Eventually(30*time.Second, "every deadline finalize to run", func() bool {
		info, err := s.insp.GetQueueInfo(jobs.QueueControl)
		return err == nil && info.Scheduled == 0 && info.Pending == 0 && info.Active == 0 && info.Retry == 0
	})
	info, _ := s.insp.GetQueueInfo(jobs.QueueControl)
	if info.Archived != 0 || info.Failed != 0 {
		archived, _ := s.insp.ListArchivedTasks(jobs.QueueControl)
		t.Errorf("control queue: %d archived, %d failed: %+v", info.Archived, info.Failed, archived)
	}
	runs, _ := s.st.List(context.Background(), 10)
	if len(runs) != 2 || runs[0].ID != ids[5] {
		t.Errorf("history %d runs, want the newest 2", len(runs))
	}
}
