package systemtest

import (
	"context"
	"encoding/json"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/testenv"
)

// TestSampleTelemetry runs `apmtel sample telemetry` with its defaults
// (50 instances × 100 days) and checks the documents it wrote.
func TestSampleTelemetry(t *testing.T) {
	t.Parallel()
	// The generator scales the collected store size, so it needs data of
	// the test's own to collect: the fixture under the test's prefix.
	w := newWorld(t)
	w.loadFixture(t)
	c := w.es
	index := w.index("sample-telemetry")
	env := testenv.Env(append(w.indexEnv(), "APMTEL_SOURCE_URL="+testenv.ESURL(t), "APMTEL_TELEMETRY_URL="+testenv.ESURL(t),
		"APMTEL_TELEMETRY_INDEX="+index, "APMTEL_REDIS_ADDR=127.0.0.1:1")...)
	out, stderr, code := testenv.Exec(t, env, "sample", "telemetry", "--from", "collect", "--clear")
	if code != 0 || !strings.Contains(out, "5000 sample telemetry documents") {
		t.Fatalf("exit %d: %s\n%s", code, out, stderr)
	}
	b, err := c.Do(context.Background(), es.Request{Method: "POST", Index: []string{index}, Endpoint: "_search",
		Params: url.Values{"track_total_hits": {"true"}}, Timeout: 30 * time.Second, Body: map[string]any{
			"size": 0,
			"aggs": map[string]any{
				"first":    map[string]any{"min": map[string]any{"field": "timestamp"}},
				"last":     map[string]any{"max": map[string]any{"field": "timestamp"}},
				"clusters": map[string]any{"cardinality": map[string]any{"field": "cluster_uuid"}},
			}}})
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Hits struct {
			Total struct {
				Value int `json:"value"`
			} `json:"total"`
		} `json:"hits"`
		Aggregations struct {
			First struct {
				ValueAsString string `json:"value_as_string"`
			} `json:"first"`
			Last struct {
				ValueAsString string `json:"value_as_string"`
			} `json:"last"`
			Clusters struct{ Value int } `json:"clusters"`
		} `json:"aggregations"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	if res.Hits.Total.Value != 5000 || res.Aggregations.Clusters.Value != 50 {
		t.Errorf("%d documents of %d clusters, want 5000 of 50", res.Hits.Total.Value, res.Aggregations.Clusters.Value)
	}
	first, _ := time.Parse(time.RFC3339, res.Aggregations.First.ValueAsString)
	last, _ := time.Parse(time.RFC3339, res.Aggregations.Last.ValueAsString)
	if !last.Equal(today) || !first.Equal(today.AddDate(0, 0, -99)) {
		t.Errorf("dates %s..%s, want %s..%s", first, last, today.AddDate(0, 0, -99), today)
	}
	// One cluster's store size grows by 1.005 a day: today / 99 days ago = 1.005^99.
	size := func(day time.Time) float64 {
		b, err := c.Do(context.Background(), es.Request{Method: "POST", Index: []string{index}, Endpoint: "_search", Timeout: 30 * time.Second,
			Body: map[string]any{"size": 1, "sort": []any{"cluster_uuid"},
				"query": map[string]any{"term": map[string]any{"timestamp": day.Format(time.RFC3339)}}}})
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Hits struct {
				Hits []struct {
					Source struct {
						StackStats struct {
							Kibana struct {
								Plugins struct {
									APM struct {
										Indices struct {
											All struct {
												Total struct {
													Store struct {
														SizeInBytes float64 `json:"size_in_bytes"`
													} `json:"store"`
												} `json:"total"`
											} `json:"all"`
										} `json:"indices"`
									} `json:"apm"`
								} `json:"plugins"`
							} `json:"kibana"`
						} `json:"stack_stats"`
					} `json:"_source"`
				} `json:"hits"`
			} `json:"hits"`
		}
		_ = json.Unmarshal(b, &r)
		if len(r.Hits.Hits) == 0 {
			t.Fatalf("no document on %s", day)
		}
		return r.Hits.Hits[0].Source.StackStats.Kibana.Plugins.APM.Indices.All.Total.Store.SizeInBytes
	}
	// Both sizes are rounded to whole bytes: old stands for an unrounded x
	// in [old-0.5, old+0.5], so now = round(x·g) lies in the rounded bounds
	// (CI collected a 159-byte store, where the plain ratio is off by 0.2 %).
	now, old := size(today), size(today.AddDate(0, 0, -99))
	g := math.Pow(1.005, 99)
	if lo, hi := math.Round((old-0.5)*g), math.Round((old+0.5)*g); old <= 0 || now < lo || now > hi {
		t.Errorf("growth today/99 days ago = %.0f/%.0f = %f, want %.0f..%.0f (1.005^99 = %f, rounded)", now, old, now/old, lo, hi, g)
	}
}
