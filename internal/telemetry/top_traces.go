package telemetry

import (
	"context"
)

// TopTraces reports the largest and median document count of the last
// day's 100 biggest traces (spec §2.3.18).
func TopTraces() Task {
	return Task{Name: "top_traces", Collect: func(ctx context.Context, env Env) (Fragment, error) {
		r, err := env.search(ctx, env.indices("TSE"), map[string]any{
			"size": 0, "track_total_hits": false,
			"query": filter(range1d),
			"aggs": map[string]any{
				"top_traces": termsOf("trace.id", 100),
				"max":        map[string]any{"max_bucket": map[string]any{"buckets_path": "top_traces>_count"}},
				"median":     map[string]any{"percentiles_bucket": map[string]any{"buckets_path": "top_traces>_count", "percents": []any{50}}},
			},
		})
		if err != nil {
			return nil, err
		}
		var max valueAgg
		if _, err := r.agg("max", &max); err != nil {
			return nil, err
		}
		var median struct {
			Values map[string]*float64 `json:"values"`
		}
		if _, err := r.agg("median", &median); err != nil {
			return nil, err
		}
		med := int64(0)
		if v := median.Values["50.0"]; v != nil {
			med = int64(*v)
		}
		return Fragment{"top_traces": map[string]any{"max": max.int(), "median": med}}, nil
	}}
}
