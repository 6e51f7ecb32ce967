package telemetry

import (
	"context"
	"fmt"
)

// Services counts the services of the last day per agent, and whether there
// are any (spec §2.3.8). Each agent name is queried once; Kibana queries
// java, js-base, rum-js and android/java twice. Kibana sends them one after
// another; we send them at once, under the cluster-wide cap.
func Services() Task {
	return Task{Name: "services", Collect: func(ctx context.Context, env Env) (Fragment, error) {
		idx := env.indices("ESMT")
		// One search per agent name, one per OTel prefix, one "any service":
		// independent, so sent at once (the cluster-wide cap bounds them);
		// answers are merged in Kibana's order.
		n := len(agentNamesWithoutOTel)
		resp := make([]*searchResponse, n+len(otelBaseAgentNames)+1)
		err := each(ctx, len(resp), func(ctx context.Context, i int) error {
			var err error
			switch {
			case i < n:
				name := agentNamesWithoutOTel[i]
				resp[i], err = env.search(ctx, idx, map[string]any{
					"size": 0, "track_total_hits": false,
					"query": filter(term("agent.name", name), range1d),
					"aggs":  map[string]any{"services": map[string]any{"cardinality": map[string]any{"field": "service.name"}}},
				})
				if err != nil {
					return fmt.Errorf("agent %s: %w", name, err)
				}
			case i < len(resp)-1:
				base := otelBaseAgentNames[i-n]
				resp[i], err = env.search(ctx, idx, map[string]any{
					"size": 0, "track_total_hits": false,
					"query": filter(map[string]any{"prefix": map[string]any{"agent.name": base}}, range1d),
					"aggs": map[string]any{"agent_name": map[string]any{
						"terms": map[string]any{"field": "agent.name", "size": 1000},
						"aggs":  map[string]any{"services": map[string]any{"cardinality": map[string]any{"field": "service.name"}}},
					}},
				})
				if err != nil {
					return fmt.Errorf("agent prefix %s: %w", base, err)
				}
			default:
				resp[i], err = env.search(ctx, idx, map[string]any{
					"size": 0, "track_total_hits": true, "terminate_after": 1,
					"query": filter(map[string]any{"exists": map[string]any{"field": "service.name"}}, range1d),
				})
				if err != nil {
					return fmt.Errorf("any service: %w", err)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		perAgent := map[string]any{}
		var sum int64
		for i, name := range agentNamesWithoutOTel {
			var v valueAgg
			if _, err := resp[i].agg("services", &v); err != nil {
				return nil, err
			}
			perAgent[name] = v.int()
			sum += v.int()
		}
		for i := range otelBaseAgentNames {
			var t struct {
				Buckets []struct {
					Key      any      `json:"key"`
					Services valueAgg `json:"services"`
				} `json:"buckets"`
			}
			if _, err := resp[n+i].agg("agent_name", &t); err != nil {
				return nil, err
			}
			for _, b := range t.Buckets {
				perAgent[keyString(b.Key)] = b.Services.int()
				sum += b.Services.int()
			}
		}
		r := resp[len(resp)-1]
		return Fragment{
			"services_per_agent":                  perAgent,
			"has_any_services_per_official_agent": sum > 0,
			"has_any_services":                    r.total() > 0,
		}, nil
	}}
}
