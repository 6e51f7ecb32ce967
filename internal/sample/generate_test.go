package sample

import (
	"math/rand/v2"
	"testing"
	"time"
)

func newGen(seed int64) *generator {
	r := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	o := Options{Services: 9, Days: 3, Now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	return &generator{r: r, o: o, services: newServices(r, o.Services)}
}

func TestGeneratorIsDeterministicAndRealistic(t *testing.T) {
	a, b := newGen(7), newGen(7)
	events := map[string]int{}
	agents := map[string]bool{}
	for i := 0; i < 2000; i++ {
		da, db := a.doc(i), b.doc(i)
		if da.Index != db.Index || da.Source["@timestamp"] != db.Source["@timestamp"] {
			t.Fatalf("doc %d differs between runs with the same seed", i)
		}
		ev := da.Source["processor"].(map[string]any)["event"].(string)
		events[ev]++
		agents[da.Source["agent"].(map[string]any)["name"].(string)] = true
		ts, err := time.Parse(time.RFC3339Nano, da.Source["@timestamp"].(string))
		if err != nil || ts.After(a.o.Now) || ts.Before(a.o.Now.Add(-72*time.Hour)) {
			t.Fatalf("doc %d timestamp %v outside the 3 days: %v", i, ts, err)
		}
	}
	for _, ev := range []string{"transaction", "span", "error", "metric"} {
		if events[ev] < 50 {
			t.Errorf("only %d %s documents in 2000", events[ev], ev)
		}
	}
	if len(agents) != 9 {
		t.Errorf("%d agents, want 9", len(agents))
	}
	if c := newGen(8).doc(0); c.Source["@timestamp"] == newGen(7).doc(0).Source["@timestamp"] {
		t.Error("different seeds gave the same document")
	}
}

// BenchmarkGenerate measures document generation alone (no indexing).
func BenchmarkGenerate(b *testing.B) {
	g := newGen(1)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = g.doc(i)
	}
}
