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

// The behavioural sample spans 120 days (some outside Kibana's 90-day
// window), several views, UI counters of the last 5 days, and is the same
// for the same seed.
func TestBehavioralObjects(t *testing.T) {
	o := Options{Seed: 3, Now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	a, b := behavioralObjects("ix", o), behavioralObjects("ix", o)
	if len(a) != len(b) || len(a) < 300 {
		t.Fatalf("%d / %d objects", len(a), len(b))
	}
	views := map[string]bool{}
	var oldest, outside90, counters int
	for i, d := range a {
		if d.ID != b[i].ID {
			t.Fatalf("object %d differs between runs with the same seed", i)
		}
		switch d.Source["type"] {
		case "application_usage_daily":
			attrs := d.Source["application_usage_daily"].(map[string]any)
			views[attrs["appId"].(string)+"/"+attrs["viewId"].(string)] = true
			ts, err := time.Parse(time.RFC3339, attrs["timestamp"].(string))
			if err != nil || ts.After(o.Now) {
				t.Fatalf("timestamp %v: %v", attrs["timestamp"], err)
			}
			age := int(o.Now.Sub(ts).Hours() / 24)
			oldest = max(oldest, age)
			if age > 90 {
				outside90++
			}
		case "usage-counter":
			counters++
			at, _ := time.Parse(time.RFC3339Nano, d.Source["updated_at"].(string))
			if at.After(o.Now) || o.Now.Sub(at) > 5*24*time.Hour {
				t.Errorf("counter %s updated at %v", d.ID, at)
			}
		}
	}
	if len(views) != 7 || oldest < 115 || outside90 < 20 || counters < 25 {
		t.Errorf("views %v, oldest %d days, %d outside 90 days, %d counters", views, oldest, outside90, counters)
	}
}
