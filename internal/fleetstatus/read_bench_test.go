package fleetstatus

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/fleet"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/runtest"
	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/scheduler"
)

// BenchmarkRead reads 1,000 clusters from real Redis, as the fleet page
// and the per-cluster metrics do at each request: every cluster with three
// sealed scheduled runs, every 7th with its newest run failed (read to the
// depth, to find its last success), every 10th never ran.
func BenchmarkRead(b *testing.B) {
	rdb, _ := testenv.RedisDB(b)
	ctx := context.Background()
	const n = 1000
	var file strings.Builder
	file.WriteString("clusters:\n")
	for i := range n {
		fmt.Fprintf(&file, "  - name: c-%04d\n    urls: [\"http://127.0.0.1:9200\"]\n", i)
	}
	set, err := fleet.Parse("c.yaml", []byte(file.String()))
	if err != nil {
		b.Fatal(err)
	}
	slot := time.Now().UTC().Truncate(12 * time.Hour)
	for i, name := range set.Names() {
		if i%10 == 9 {
			continue
		}
		st := run.NewStore(rdb, keys.NewFor("bench", name), time.Hour, 50)
		for k := 3; k >= 1; k-- {
			at := slot.Add(-time.Duration(k) * 12 * time.Hour)
			spec := runtest.Spec{ID: scheduler.ScheduledRunID(at), Trigger: "schedule", Tasks: []string{"agents"}, Start: at}
			if k == 1 && i%7 == 0 {
				spec.Fail = map[string]string{"agents": "boom"}
			}
			if _, err := runtest.Seed(ctx, st, spec); err != nil {
				b.Fatal(err)
			}
		}
	}
	rd := Reader{Redis: rdb, Prefix: "bench", Depth: 50}
	names := set.Names()
	for b.Loop() {
		states, err := rd.Read(ctx, names)
		if err != nil || len(states) != n {
			b.Fatalf("%d states: %v", len(states), err)
		}
	}
}
