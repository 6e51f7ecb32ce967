package systemtest

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/jobs"
	"github.com/apmtel/apmtel/scheduler"
)

// TestPipeline runs two schedulers and two workers as separate processes and
// checks the whole run: one run, every task ok, values equal to what the
// fixture implies, one telemetry document, idempotent upload, and preview
// equal to the snapshot.
func TestPipeline(t *testing.T) {
	t.Parallel()
	// Two schedulers starting on both sides of a 12h slot boundary would
	// rightly start two runs; keep clear of the boundary.
	if next := scheduler.SlotStart(time.Now(), 12*time.Hour).Add(12 * time.Hour); time.Until(next) < 30*time.Second {
		time.Sleep(time.Until(next) + time.Second)
	}
	s := newStack(t)
	f := s.loadFixture(t)
	esc := s.es
	telemetryIndex := s.index("phone-home")
	env := s.env(t, testenv.ESURL(t), "APMTEL_TELEMETRY_URL="+testenv.ESURL(t), "APMTEL_TELEMETRY_INDEX="+telemetryIndex,
		// The test needs the catch-up run at start, whatever the time of day.
		"APMTEL_CATCHUP_GRACE=0s")
	// A strict index rejects any field its mapping lacks: the upload below
	// succeeding shows the payload is fully mapped.
	if out, stderr, code := testenv.Exec(t, env, "telemetry-index", "setup", "--dynamic", "strict"); code != 0 || !strings.Contains(out, "created") {
		t.Fatalf("telemetry-index setup: %d %s %s", code, out, stderr)
	}
	s.Start("worker-1", env, "worker")
	s.Start("worker-2", env, "worker")
	s.Start("scheduler-1", env, "scheduler")
	s.Start("scheduler-2", env, "scheduler")

	st := s.st
	ctx := context.Background()
	var rr run.Run
	s.Eventually(90*time.Second, "the scheduled run to be finalized and uploaded", func() bool {
		runs, err := st.List(ctx, 10)
		if err != nil || len(runs) == 0 {
			return false
		}
		rr = runs[0]
		return rr.Status == run.StatusSealed && rr.Upload.State == run.UploadUploaded
	})
	finalizedAt := time.Now()

	runs, _ := st.List(ctx, 10)
	if len(runs) != 1 || !strings.HasPrefix(runs[0].ID, "sched-") {
		t.Fatalf("want exactly one scheduled run, got %+v", runs)
	}
	results, err := st.Results(ctx, rr.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rr.Tasks) != len(telemetry.Default().Names()) {
		t.Errorf("run has %d tasks, want %d", len(rr.Tasks), len(telemetry.Default().Names()))
	}
	for _, name := range rr.Tasks {
		if r := results[name]; r.Status != run.TaskOK || r.Attempt != 1 {
			t.Errorf("task %s: %+v", name, r)
		}
	}
	if rr.Report == nil || len(rr.Report.SchemaProblems) != 0 || len(rr.Report.Problems) != 0 {
		t.Errorf("report: %+v", rr.Report)
	}

	raw, err := st.Snapshot(ctx, rr.ID)
	if err != nil {
		t.Fatal(err)
	}
	var snap snapshot
	if err := json.Unmarshal(raw, &snap); err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, f, snap, rr.CreatedAt, finalizedAt)

	// Exactly one telemetry document, with the deterministic id.
	info, err := es.Info(ctx, esc, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	docID := info.ClusterUUID + ":" + rr.ID
	checkTelemetryDocs(t, esc, telemetryIndex, docID, 1)

	// Send it again (`apmtel upload RUN`): the engine already holds the
	// document (409 on create), so it is "already delivered": one document,
	// same id, unchanged.
	insp := s.insp
	resent := time.Now()
	if out, stderr, code := testenv.Exec(t, env, "upload", rr.ID); code != 0 || !strings.Contains(out, "upload enqueued") {
		t.Fatalf("apmtel upload: %d %s %s", code, out, stderr)
	}
	s.Eventually(30*time.Second, "the repeated upload", func() bool {
		r, err := st.Get(ctx, rr.ID)
		return err == nil && r.Upload.State == run.UploadUploaded && r.Upload.At.After(resent)
	})
	checkTelemetryDocs(t, esc, telemetryIndex, docID, 1)

	// preview on the same data prints the same object; only tasks.*.took and the
	// time-dependent retainment ages may differ.
	before := time.Now()
	out, stderr, code := testenv.Exec(t, env, "preview")
	after := time.Now()
	if code != 0 {
		t.Fatalf("preview exited %d: %s", code, stderr)
	}
	var prev snapshot
	if err := json.Unmarshal([]byte(out), &prev); err != nil {
		t.Fatalf("preview output: %v\n%s", err, out)
	}
	// tasks.<name>.took is the APM object's: the data tasks only.
	if want := len(telemetry.Default().NamesOf(telemetry.PluginAPM)); len(prev.Tasks) != want {
		t.Errorf("preview reports took for %d tasks, want all %d data tasks: %v", len(prev.Tasks), want, prev.Tasks)
	}
	checkSnapshot(t, f, prev, before, after)
	var a, b map[string]any
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &b); err != nil {
		t.Fatal(err)
	}
	for _, m := range []map[string]any{a, b} {
		delete(m, "tasks")
		delete(m, "retainment")
		// The metricset figures and counts.global_labels read the
		// metrics-apm.* data streams without the test's prefix (their
		// pattern is fixed, as in Kibana): data every test on the cluster
		// shares, which may change between the run and the preview.
		if ix, ok := m["indices"].(map[string]any); ok {
			if metric, ok := ix["metric"].(map[string]any); ok {
				delete(metric, "metricset")
			}
		}
		if counts, ok := m["counts"].(map[string]any); ok {
			delete(counts, "global_labels")
		}
		// An index's store size changes as the engine flushes and merges
		// its segments after the load (1,456 bytes at the run, 54,803 at
		// the preview was seen); the document counts beside it must agree.
		dropKey(m["indices"], "store")
	}
	if d := cmp.Diff(a, b); d != "" {
		t.Errorf("preview differs from the snapshot (-snapshot +preview):\n%s", d)
	}
	if len(a) < 15 {
		t.Errorf("snapshot has only %d top-level keys: %v", len(a), a)
	}

	// An unknown task is refused before anything is enqueued.
	q, _ := insp.GetQueueInfo(jobs.QueueCollect)
	_, stderr, code = testenv.Exec(t, env, "run", "--task", "nosuch")
	if code == 0 || !strings.Contains(stderr, "unknown telemetry task nosuch") {
		t.Errorf("run --task nosuch: exit %d, stderr %q", code, stderr)
	}
	q2, _ := insp.GetQueueInfo(jobs.QueueCollect)
	runs, _ = st.List(ctx, 10)
	if len(runs) != 1 || q2.Size != q.Size || q2.Processed != q.Processed {
		t.Errorf("run --task nosuch changed state: %d runs, queue %d→%d", len(runs), q.Size, q2.Size)
	}
}

// snapshot is the part of the telemetry object the first five tasks produce.
type snapshot struct {
	Cloud struct {
		AvailabilityZone []string `json:"availability_zone"`
		Provider         []string `json:"provider"`
		Region           []string `json:"region"`
	} `json:"cloud"`
	Host struct {
		OS struct {
			Platform []string `json:"platform"`
		} `json:"os"`
	} `json:"host"`
	Counts     map[string]map[string]int64 `json:"counts"`
	Retainment map[string]map[string]int64 `json:"retainment,omitempty"`
	Version    struct {
		APMServer map[string]int64 `json:"apm_server"`
	} `json:"version"`
	Tasks map[string]any `json:"tasks,omitempty"`
}

func checkSnapshot(t *testing.T, f *fixture, s snapshot, from, to time.Time) {
	t.Helper()
	eq := func(what string, got, want any) {
		t.Helper()
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", what, d)
		}
	}
	eq("cloud.provider", s.Cloud.Provider, f.topTerms(func(d fixtureDoc) string { return d.svc.provider }))
	eq("cloud.region", s.Cloud.Region, f.topTerms(func(d fixtureDoc) string { return d.svc.region }))
	eq("cloud.availability_zone", s.Cloud.AvailabilityZone, f.topTerms(func(d fixtureDoc) string { return d.svc.zone }))
	eq("host.os.platform", s.Host.OS.Platform, f.topTerms(func(d fixtureDoc) string { return d.svc.platform }))
	for ev, want := range f.expectedCounts() {
		eq("counts."+ev, s.Counts[ev], want)
	}
	eq("counts.agent_configuration", s.Counts["agent_configuration"], map[string]int64{"all": int64(f.agentConfigs)})
	parts := strings.Split(f.newestObserver(), ".")
	want := map[string]int64{}
	for i, k := range []string{"major", "minor", "patch"} {
		n, _ := strconv.ParseInt(parts[i], 10, 64)
		want[k] = n
	}
	eq("version.apm_server", s.Version.APMServer, want)
	for ev, oldest := range f.oldest() {
		got := s.Retainment[ev]["ms"]
		lo, hi := from.Sub(oldest).Milliseconds()-1000, to.Sub(oldest).Milliseconds()+1000
		if got < lo || got > hi {
			t.Errorf("retainment.%s.ms = %d, want within [%d, %d]", ev, got, lo, hi)
		}
	}
}

func checkTelemetryDocs(t *testing.T, c *es.Client, telemetryIndex, id string, version int) {
	t.Helper()
	ctx := context.Background()
	b, err := c.Do(ctx, es.Request{Method: "POST", Index: []string{telemetryIndex}, Endpoint: "_search",
		Params: url.Values{"version": {"true"}}, Body: map[string]any{"size": 10}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Hits struct {
			Hits []struct {
				ID      string `json:"_id"`
				Version int    `json:"_version"`
				Source  struct {
					ClusterUUID string `json:"cluster_uuid"`
					Collection  string `json:"collection"`
					StackStats  struct {
						Kibana struct {
							Plugins struct {
								APM map[string]any `json:"apm"`
							} `json:"plugins"`
						} `json:"kibana"`
					} `json:"stack_stats"`
				} `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Hits.Hits) != 1 {
		t.Fatalf("telemetry index holds %d documents, want 1", len(res.Hits.Hits))
	}
	h := res.Hits.Hits[0]
	if h.ID != id || h.Version != version || h.Source.Collection != "local" || h.Source.StackStats.Kibana.Plugins.APM["cloud"] == nil {
		t.Errorf("telemetry document: id %s version %d (want %s v%d), source %+v", h.ID, h.Version, id, version, h.Source)
	}
}

// dropKey removes key from every object nested in v.
func dropKey(v any, key string) {
	switch v := v.(type) {
	case map[string]any:
		delete(v, key)
		for _, x := range v {
			dropKey(x, key)
		}
	case []any:
		for _, x := range v {
			dropKey(x, key)
		}
	}
}
