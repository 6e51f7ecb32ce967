package fleetstatus

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/apmtel/apmtel/internal/backoff"
	"github.com/apmtel/apmtel/internal/fleet"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/runtest"
	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/scheduler"
)

// Read over real Redis gives Rows what a full read of every cluster's
// history gives it, although it reads deeper only where the newest runs do
// not settle the row; each cluster's runs come from its own key space.
func TestReadMatchesAFullRead(t *testing.T) {
	t.Parallel()
	rdb, _ := testenv.RedisDB(t)
	ctx := context.Background()
	set, err := fleet.Parse("c.yaml", []byte(`clusters:
  - name: steady
    urls: ["http://127.0.0.1:9200"]
  - name: streak
    urls: ["http://127.0.0.1:9201"]
  - name: manual
    urls: ["http://127.0.0.1:9202"]
  - name: never
    urls: ["http://127.0.0.1:9203"]
`))
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "fs"
	slot := time.Now().UTC().Truncate(12 * time.Hour).Add(-5 * 12 * time.Hour)
	tasks := []string{"agents", "services"}
	seed := func(cluster, id string, at time.Time, fail bool) {
		t.Helper()
		st := run.NewStore(rdb, keys.NewFor(prefix, cluster), time.Hour, 50)
		spec := runtest.Spec{ID: id, Trigger: "schedule", Tasks: tasks, Start: at, Upload: run.UploadUploaded}
		if fail {
			spec.Fail = map[string]string{"services": "boom " + cluster}
		}
		if _, err := runtest.Seed(ctx, st, spec); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		s := slot.Add(time.Duration(i) * 12 * time.Hour)
		seed("steady", scheduler.ScheduledRunID(s), s, false)
		// streak: its one success is the oldest of five runs, beyond the first look.
		seed("streak", scheduler.ScheduledRunID(s), s.Add(time.Minute), i > 0)
		// manual: no scheduled run at all.
		seed("manual", fmt.Sprintf("manual-%d", i), s.Add(2*time.Minute), false)
	}
	bst := backoff.NewStore(rdb, keys.NewFor(prefix, "streak"), backoff.DefaultPolicy(12*time.Hour), 0)
	if _, err := bst.Failed(ctx, "r1", time.Now(), "boom streak"); err != nil {
		t.Fatal(err)
	}

	rd := Reader{Redis: rdb, Prefix: prefix, Depth: 50, Parallel: 2}
	got, err := rd.Read(ctx, set.Names())
	if err != nil {
		t.Fatal(err)
	}
	full := map[string]ClusterState{}
	for _, name := range set.Names() {
		runs, err := rd.Store(name).List(ctx, 50)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := backoff.NewStore(rdb, keys.NewFor(prefix, name), backoff.Policy{}, 0).Get(ctx)
		full[name] = ClusterState{Runs: runs, Backoff: b}
	}
	sch := Schedule{Interval: 12 * time.Hour, Spread: time.Hour}
	now := time.Now()
	if diff := cmp.Diff(Rows(set, full, sch, now), Rows(set, got, sch, now)); diff != "" {
		t.Fatalf("rows from Read differ from a full read (-full +read):\n%s", diff)
	}
	if n := len(got["steady"].Runs); n != firstLook {
		t.Errorf("steady: read %d runs, want only the first %d", n, firstLook)
	}
	if n := len(got["streak"].Runs); n != 5 {
		t.Errorf("streak: read %d runs, want all 5 (its success is the oldest)", n)
	}
	if got["streak"].Backoff.Failures != 1 || got["steady"].Backoff.Failures != 0 {
		t.Errorf("backoff read from the wrong key space: %+v", got)
	}
	for name, st := range got {
		for _, r := range st.Runs {
			if r.Source != name {
				t.Errorf("cluster %s was given run %s of source %s", name, r.ID, r.Source)
			}
		}
	}
	if len(got["never"].Runs) != 0 {
		t.Errorf("never: %d runs", len(got["never"].Runs))
	}

	// An unreachable Redis is an error, not a fleet that never ran.
	rdb.Close()
	if _, err := rd.Read(ctx, set.Names()); err == nil {
		t.Fatal("read over a closed client succeeded")
	}
}
