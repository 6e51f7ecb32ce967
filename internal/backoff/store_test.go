package backoff

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/testenv"
)

func TestStoreAgainstRedis(t *testing.T) {
	t.Parallel()
	rdb, _ := testenv.RedisDB(t)
	ctx := context.Background()
	p := Policy{After: 3, Base: time.Hour, Max: MaxBackoff}
	space := keys.NewFor("apmtel", "prod-eu")
	st := NewStore(rdb, space, p, 0)
	other := NewStore(rdb, keys.NewFor("apmtel", "prod-us"), p, 0)
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

	if s, err := st.Get(ctx); err != nil || s != (State{}) {
		t.Fatalf("empty: %+v %v", s, err)
	}
	for i := 1; i <= 3; i++ {
		if _, err := st.Failed(ctx, fmt.Sprintf("sched-%d", i), t0.Add(time.Duration(i)*time.Hour), "connection refused"); err != nil {
			t.Fatal(err)
		}
	}
	// A retried finalize counts its run again: no change.
	s, err := st.Failed(ctx, "sched-3", t0.Add(4*time.Hour), "other")
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := State{Failures: 3, LastError: "connection refused", LastFailureAt: t0.Add(3 * time.Hour), Until: t0.Add(4 * time.Hour), LastRun: "sched-3"}
	if got != want || s != want {
		t.Fatalf("stored %+v\nreturned %+v\nwant %+v", got, s, want)
	}
	if txt := got.Text(t0.Add(3 * time.Hour)); txt != "backing off until 2026-12-04T16:00:00Z: connection refused" {
		t.Fatalf("text %q", txt)
	}
	if ttl := rdb.PTTL(ctx, space.Backoff()).Val(); ttl < 47*time.Hour || ttl > 48*time.Hour {
		t.Fatalf("ttl %s, want twice the cap", ttl)
	}
	if keys.Slot(space.Backoff()) != keys.Slot(space.Runs()) {
		t.Fatal("backoff key outside the source's slot")
	}
	// Another cluster is untouched.
	if s, _ := other.Get(ctx); s != (State{}) {
		t.Fatalf("other cluster %+v", s)
	}
	// Success: healthy, and no key left.
	if s, err := st.Succeeded(ctx); err != nil || s != (State{}) {
		t.Fatalf("succeeded %+v %v", s, err)
	}
	if n := rdb.Exists(ctx, space.Backoff()).Val(); n != 0 {
		t.Fatal("a healthy cluster keeps a backoff key")
	}

	// Concurrent outcomes of distinct runs: each counted once.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := other.Failed(ctx, fmt.Sprintf("manual-%d", i), t0, "x"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if s, _ := other.Get(ctx); s.Failures != 20 || s.Until != t0.Add(MaxBackoff) {
		t.Fatalf("after 20 concurrent failures %+v", s)
	}

	// A damaged hash is an error, not a healthy cluster.
	rdb.HSet(ctx, space.Backoff(), fieldFailures, "many")
	if _, err := st.Get(ctx); err == nil {
		t.Fatal("damaged state read as valid")
	}
}
