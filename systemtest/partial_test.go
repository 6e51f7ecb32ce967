package systemtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/faultproxy"
	"github.com/apmtel/apmtel/internal/run"
)

// The engine's real answers rewritten by the proxy into partial ones — timed
// out, shards failed, asked-for aggregations missing: every attempt of an
// affected task fails naming the index and what was partial, the task ends
// failed (never ok), and its last good value stays the whole answer's.
func TestFaultPartialAnswers(t *testing.T) {
	t.Parallel()
	p, purl := startProxy(t)
	s := newStack(t)
	s.loadFixture(t)
	env := s.env(t, purl, "APMTEL_MAX_RETRY=1", "APMTEL_SEARCH_TIMEOUT=10s")
	s.Start("worker-1", env, "worker")
	ctx := context.Background()
	tasks := []string{"--task", "cloud", "--task", "processor_events"}
	sealed := func(r run.Run) bool { return finalized(r) }

	good := startRun(t, env, tasks...)
	s.waitRun(t, good, 90*time.Second, "the whole run to seal", sealed)
	res := s.results(t, good)
	if res["cloud"].Status != run.TaskOK || res["processor_events"].Status != run.TaskOK {
		t.Fatalf("without faults: %+v", res)
	}
	before, err := s.st.LastGood(ctx)
	if err != nil || len(before["cloud"]) == 0 {
		t.Fatalf("last good values: %v %v", before, err)
	}

	for _, tc := range []struct {
		rewrite, what string
		eventsPartial bool // processor_events asks for no aggregation
	}{
		{"timed_out", "timed_out: true", true},
		{"shards_failed", "shards failed (injected: injected_fault", true},
		{"no_aggregations", "aggregations missing: availability_zone, provider, region", false},
	} {
		p.SetFault(faultproxy.Fault{Mode: "rewrite", Rewrite: tc.rewrite, Match: "_search"})
		id := startRun(t, env, tasks...)
		s.waitRun(t, id, 90*time.Second, "the partial run to seal", sealed)
		p.SetFault(faultproxy.Fault{Mode: "none"})
		res := s.results(t, id)
		cloud := res["cloud"]
		if cloud.Status != run.TaskFailed || cloud.Attempt != 2 || len(cloud.Result) != 0 ||
			!strings.Contains(cloud.Error, "partial answer from ") || !strings.Contains(cloud.Error, "apm-*") ||
			!strings.Contains(cloud.Error, tc.what) {
			t.Errorf("%s: cloud = %+v, want failed after 2 attempts naming the index and %q", tc.rewrite, cloud, tc.what)
		}
		ev := res["processor_events"]
		if tc.eventsPartial && (ev.Status != run.TaskFailed || !strings.Contains(ev.Error, tc.what)) {
			t.Errorf("%s: processor_events = %+v, want failed with %q", tc.rewrite, ev, tc.what)
		}
		if !tc.eventsPartial && ev.Status != run.TaskOK {
			t.Errorf("%s: processor_events (no aggregation asked) = %+v, want ok", tc.rewrite, ev)
		}
		after, err := s.st.LastGood(ctx)
		if err != nil || string(after["cloud"]) != string(before["cloud"]) {
			t.Errorf("%s: last good cloud = %s, want the whole answer's %s (%v)", tc.rewrite, after["cloud"], before["cloud"], err)
		}
	}
}
