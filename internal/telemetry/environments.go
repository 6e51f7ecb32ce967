package telemetry

import (
	"context"
	"encoding/json"
)

// Environments reports the top environments of the last day and how many
// services have none or several (spec §2.3.4). The composite aggregation is
// paged to the end; Kibana stops at the first 1000 (environment, service) pairs.
func Environments() Task {
	return Task{Name: "environments", Collect: func(ctx context.Context, env Env) (Fragment, error) {
		idx := env.indices("T")
		var top []string
		envsOf := map[string][]*string{}
		var order []string
		var after map[string]any
		for page := 0; ; page++ {
			comp := map[string]any{"size": 1000, "sources": []any{
				map[string]any{"service.environment": map[string]any{"terms": map[string]any{"field": "service.environment", "missing_bucket": true}}},
				map[string]any{"service.name": map[string]any{"terms": map[string]any{"field": "service.name"}}},
			}}
			if after != nil {
				comp["after"] = after
			}
			aggs := map[string]any{"service_environments": map[string]any{"composite": comp}}
			if page == 0 {
				aggs["environments"] = termsOf("service.environment", 5)
			}
			r, err := env.search(ctx, idx, map[string]any{
				"track_total_hits": false, "size": 0,
				"query": filter(range1d),
				"aggs":  aggs,
			})
			if err != nil {
				return nil, err
			}
			if page == 0 {
				var t termsAgg
				if _, err := r.agg("environments", &t); err != nil {
					return nil, err
				}
				top = t.keys()
			}
			var c struct {
				AfterKey map[string]any `json:"after_key"`
				Buckets  []struct {
					Key map[string]json.RawMessage `json:"key"`
				} `json:"buckets"`
			}
			if _, err := r.agg("service_environments", &c); err != nil {
				return nil, err
			}
			for _, b := range c.Buckets {
				var svc string
				var environment *string
				_ = json.Unmarshal(b.Key["service.name"], &svc)
				_ = json.Unmarshal(b.Key["service.environment"], &environment)
				if _, seen := envsOf[svc]; !seen {
					order = append(order, svc)
				}
				envsOf[svc] = append(envsOf[svc], environment)
			}
			if c.AfterKey == nil || len(c.Buckets) < 1000 {
				break
			}
			after = c.AfterKey
		}
		without, multiple := 0, 0
		for _, svc := range order {
			es := envsOf[svc]
			if len(es) > 1 {
				multiple++
			}
			for _, e := range es {
				if e == nil {
					without++
					break
				}
			}
		}
		if top == nil {
			top = []string{}
		}
		return Fragment{"environments": map[string]any{
			"services_without_environment":        without,
			"services_with_multiple_environments": multiple,
			"top_environments":                    top,
		}}, nil
	}}
}
