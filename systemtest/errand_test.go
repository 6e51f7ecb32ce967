package systemtest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/testenv"
)

// The source identity errand is its own entry of the run (ok, with its
// requests), `run --wait` shows it, the include_remotes OpenSearch refuses
// is asked once per source rather than every run, and the run's breakdown
// adds up to its wall time.
func TestSourceIdentityErrand(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.loadFixture(t)
	env := s.env(t, testenv.ESURL(t))
	s.Start("worker-1", env, "worker")

	type result struct {
		Run       run.Run                   `json:"run"`
		Tasks     map[string]run.TaskRecord `json:"tasks"`
		Breakdown run.Breakdown             `json:"breakdown"`
	}
	follow := func() result {
		t.Helper()
		out, stderr, code := testenv.Exec(t, env, "run", "--wait", "--json")
		if code != 0 {
			t.Fatalf("run --wait: exit %d\n%s\n%s", code, out, stderr)
		}
		if !strings.Contains(stderr, "[errand] source_identity") || !strings.Contains(stderr, "ok ") {
			t.Errorf("run --wait does not show the errand:\n%s", stderr)
		}
		var r result
		if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &r); err != nil {
			t.Fatalf("--json: %v\n%s", err, out)
		}
		return r
	}

	first := follow()
	e, ok := first.Run.Errand(run.ErrandSourceIdentity)
	// OpenSearch (and Elasticsearch < 8.16) refuses include_remotes: asked
	// with it, then without (7 requests); a newer Elasticsearch takes it (6).
	if !ok || e.Status != run.TaskOK || e.Requests < 6 || e.Requests > 7 || e.TookMS <= 0 || e.StartedAt.IsZero() || len(first.Run.SourceInfo) == 0 {
		t.Errorf("first run's errand %+v (source info %d bytes)", e, len(first.Run.SourceInfo))
	}
	second := follow()
	if e, ok := second.Run.Errand(run.ErrandSourceIdentity); !ok || e.Status != run.TaskOK || e.Requests != 6 {
		t.Errorf("second run's errand %+v: the refused include_remotes was asked again", e)
	}

	b := second.Breakdown
	var sum int64
	for _, st := range b.Steps {
		sum += st.MS
	}
	// Each step is rounded down to the millisecond.
	if b.Critical == "" || b.WallMS <= 0 || sum > b.WallMS || b.WallMS-sum > int64(len(b.Steps)) || len(b.Tasks) != len(second.Run.Tasks) {
		t.Errorf("breakdown: critical %q, wall %d ms, steps %+v (sum %d ms), %d task shares", b.Critical, b.WallMS, b.Steps, sum, len(b.Tasks))
	}
	for _, ts := range b.Tasks {
		if ts.Status == run.TaskOK && ts.Task != "agent_configuration" && ts.Requests == 0 {
			t.Errorf("task %s: no requests metered: %+v", ts.Task, ts)
		}
	}
}
