package telemetry

import (
	"context"
	"fmt"
)

// Services counts the services of the last day per agent, and whether there
// are any (spec §2.3.8). Each agent name is queried once; Kibana queries
// java, js-base, rum-js and android/java twice.
func Services() Task {
	return Task{Name: "services", Collect: func(ctx context.Context, env Env) (Fragment, error) {
		idx := env.indices("ESMT")
		perAgent := map[string]any{}
		var sum int64
		for _, name := range agentNamesWithoutOTel {
			r, err := env.search(ctx, idx, map[string]any{
				"size": 0, "track_total_hits": false,
				"query": filter(term("agent.name", name), range1d),
				"aggs":  map[string]any{"services": map[string]any{"cardinality": map[string]any{"field": "service.name"}}},
			})
			if err != nil {
				return nil, fmt.Errorf("agent %s: %w", name, err)
			}
			var v valueAgg
			if _, err := r.agg("services", &v); err != nil {
				return nil, err
			}
			perAgent[name] = v.int()
			sum += v.int()
		}
		for _, base := range otelBaseAgentNames {
			r, err := env.search(ctx, idx, map[string]any{
				"size": 0, "track_total_hits": false,
				"query": filter(map[string]any{"prefix": map[string]any{"agent.name": base}}, range1d),
				"aggs": map[string]any{"agent_name": map[string]any{
					"terms": map[string]any{"field": "agent.name", "size": 1000},
					"aggs":  map[string]any{"services": map[string]any{"cardinality": map[string]any{"field": "service.name"}}},
				}},
			})
			if err != nil {
				return nil, fmt.Errorf("agent prefix %s: %w", base, err)
			}
			var t struct {
				Buckets []struct {
					Key      any      `json:"key"`
					Services valueAgg `json:"services"`
				} `json:"buckets"`
			}
			if _, err := r.agg("agent_name", &t); err != nil {
				return nil, err
			}
			for _, b := range t.Buckets {
				perAgent[keyString(b.Key)] = b.Services.int()
				sum += b.Services.int()
			}
		}
		r, err := env.search(ctx, idx, map[string]any{
			"size": 0, "track_total_hits": true, "terminate_after": 1,
			"query": filter(map[string]any{"exists": map[string]any{"field": "service.name"}}, range1d),
		})
		if err != nil {
			return nil, fmt.Errorf("any service: %w", err)
		}
		return Fragment{
			"services_per_agent":                  perAgent,
			"has_any_services_per_official_agent": sum > 0,
			"has_any_services":                    r.total() > 0,
		}, nil
	}}
}
