package scheduler_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/backoff"
	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/fleet"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/spread"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/scheduler"
)

// One run per enabled cluster per slot, each at its offset: a pass in the
// middle of the slot starts exactly the clusters whose offset passed (the
// catch-up of a scheduler that starts late), a later pass the rest, a pass
// after that nothing; the next slot starts them all again. A disabled
// cluster never runs; a cluster backing off is skipped until its backoff
// ends.
func TestFleetSchedulesEachClusterAtItsOffset(t *testing.T) {
	t.Parallel()
	rdb, _ := testenv.RedisDB(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "clusters.yaml")
	yaml := "clusters:\n"
	names := []string{"c0", "c1", "c2", "c3", "c4", "c5"}
	for i, n := range names {
		yaml += "  - name: " + n + "\n    urls: [\"http://127.0.0.1:" + string(rune('1'+i)) + "\"]\n"
	}
	yaml += "  - name: off\n    urls: [\"http://127.0.0.1:9\"]\n    enabled: false\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := fleet.NewWatcher(file, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Interval, cfg.FleetSpread, cfg.FleetSpreadSet = 4*time.Hour, time.Hour, true
	cfg.KeyPrefix = "fleetsched"
	slot := time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC)
	offsets := map[string]time.Duration{}
	for _, n := range names {
		offsets[n] = spread.Offset(n, cfg.Interval, time.Hour)
	}
	mid := slot.Add(30 * time.Minute)
	var early []string
	for _, n := range names {
		if offsets[n] <= 30*time.Minute {
			early = append(early, n)
		}
	}
	if len(early) == 0 || len(early) == len(names) {
		t.Fatalf("offsets %v do not split at 30m; pick other names", offsets)
	}
	now := mid
	policy := backoff.DefaultPolicy(cfg.Interval)
	stores := map[string]*backoff.Store{}
	for _, n := range names {
		stores[n] = backoff.NewStore(rdb, keys.NewFor(cfg.KeyPrefix, n), policy, time.Hour)
	}
	cl := asynq.NewClientFromRedisClient(rdb)
	f := &scheduler.Fleet{Config: cfg, RDB: rdb, Clusters: w, Registry: telemetry.Default(), Enqueuer: cl, Logger: zerolog.Nop(),
		Now: func() time.Time { return now }, Backoff: func(n string) *backoff.Store { return stores[n] }}
	ctx := context.Background()
	// c-last backs off past the slot: three failures.
	sick := names[len(names)-1]
	for i := range 3 {
		if _, err := stores[sick].Failed(ctx, "r"+string(rune('0'+i)), mid.Add(-time.Minute), "connection refused"); err != nil {
			t.Fatal(err)
		}
	}
	ran := func(id string) []string {
		var out []string
		for _, n := range append(names, "off") {
			st := run.NewStore(rdb, keys.NewFor(cfg.KeyPrefix, n), time.Hour, 50)
			if _, err := st.Get(ctx, id); err == nil {
				out = append(out, n)
			}
		}
		sort.Strings(out)
		return out
	}
	id := scheduler.ScheduledRunID(slot)
	next, err := f.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantEarly := without(early, sick)
	if got := ran(id); !equal(got, wantEarly) {
		t.Fatalf("after a pass at +30m: runs of %v, want %v (offsets %v)", got, wantEarly, offsets)
	}
	if !next.After(mid) || next.After(slot.Add(time.Hour)) {
		t.Errorf("next pass at %s, want within the spread", next)
	}
	now = slot.Add(2 * time.Hour)
	if _, err := f.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	want := without(names, sick)
	if got := ran(id); !equal(got, want) {
		t.Fatalf("after the spread: runs of %v, want %v", got, want)
	}
	// Slot runs are created once: a run sealed meanwhile is not restarted.
	if _, err := f.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	// The next slot: the backoff (one interval from the third failure) is
	// over. The slot's runs ended meanwhile (an open one would stand for the
	// next slot's: runs never overlap).
	for _, n := range want {
		st := run.NewStore(rdb, keys.NewFor(cfg.KeyPrefix, n), time.Hour, 50)
		if err := st.Cancel(ctx, id, now); err != nil {
			t.Fatal(err)
		}
	}
	now = slot.Add(cfg.Interval + 2*time.Hour)
	if _, err := f.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ran(scheduler.ScheduledRunID(slot.Add(cfg.Interval))); !equal(got, names) {
		t.Fatalf("next slot: runs of %v, want every enabled cluster %v", got, names)
	}
	// Keys: each cluster's run is in its own hash tag, with the single-cluster run id.
	if n, _ := rdb.Exists(ctx, keys.NewFor(cfg.KeyPrefix, "c0").Run(id)).Result(); n != 1 {
		t.Errorf("run %s of c0 not at %s", id, keys.NewFor(cfg.KeyPrefix, "c0").Run(id))
	}
}

func without(list []string, drop string) []string {
	var out []string
	for _, s := range list {
		if s != drop {
			out = append(out, s)
		}
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
