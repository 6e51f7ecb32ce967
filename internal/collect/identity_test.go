package collect

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/testenv"
)

// A run whose source answered with another cluster_uuid than the previous
// run that knew one is warned about; the same uuid, no earlier identity or
// no identity of its own is not.
func TestIdentityWarning(t *testing.T) {
	t.Parallel()
	rdb, _ := testenv.RedisDB(t)
	st := run.NewStore(rdb, keys.NewFor("idw", "c1"), time.Hour, 50)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	mk := func(id string, at time.Time, uuid string) run.Run {
		t.Helper()
		r := run.Run{ID: id, Trigger: "scheduled", Kind: run.KindFull, CreatedAt: at, Deadline: at.Add(time.Hour), Tasks: []string{"cloud"}, Indices: config.DefaultIndices()}
		if _, err := st.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		if uuid != "" {
			if err := st.SetSourceInfo(ctx, id, []byte(`{"cluster_uuid":"`+uuid+`","cluster_name":"n"}`)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := st.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	first := mk("sched-a", t0, "uuid-one")
	noInfo := mk("sched-b", t0.Add(time.Hour), "")
	same := mk("sched-c", t0.Add(2*time.Hour), "uuid-one")
	other := mk("sched-d", t0.Add(3*time.Hour), "uuid-two")
	for _, tc := range []struct {
		name string
		r    run.Run
		want string
	}{
		{"first run", first, ""},
		{"no identity", noInfo, ""},
		{"same cluster", same, ""},
		{"another cluster", other, "cluster_uuid uuid-two, its previous run sched-c as uuid-one"},
	} {
		w, err := identityWarning(ctx, st, tc.r)
		if err != nil {
			t.Fatal(err)
		}
		if (tc.want == "") != (w == "") || !strings.Contains(w, tc.want) {
			t.Errorf("%s: warning %q, want %q", tc.name, w, tc.want)
		}
	}
}
