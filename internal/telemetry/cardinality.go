package telemetry

import (
	"context"
	"fmt"
)

// Cardinality reports the last day's distinct transaction names, user
// agents and (for browser agents) client countries (spec §2.3.14), nested
// as Kibana nests them (cardinality.client.geo.country_iso_code.rum.1d: each
// dot of the field name is one level). A value missing from the answer is
// left out.
func Cardinality() Task {
	return Task{Name: "cardinality", Collect: func(ctx context.Context, env Env) (Fragment, error) {
		idx := env.indices("T")
		card := func(field string) map[string]any {
			return map[string]any{"cardinality": map[string]any{"field": field}}
		}
		rumNames := make([]any, len(rumAgentNames))
		for i, n := range rumAgentNames {
			rumNames[i] = n
		}
		// Two independent searches, sent at once under the cluster-wide cap.
		var all, rum *searchResponse
		err := each(ctx, 2, func(ctx context.Context, i int) error {
			var err error
			if i == 0 {
				all, err = env.search(ctx, idx, map[string]any{
					"size": 0, "track_total_hits": false,
					"query": filter(range1d),
					"aggs":  map[string]any{"transaction.name": card("transaction.name"), "user_agent.original": card("user_agent.original")},
				})
				if err != nil {
					return fmt.Errorf("all agents: %w", err)
				}
				return nil
			}
			rum, err = env.search(ctx, idx, map[string]any{
				"size": 0, "track_total_hits": false,
				"query": filter(range1d, map[string]any{"terms": map[string]any{"agent.name": rumNames}}),
				"aggs": map[string]any{"client.geo.country_iso_code": card("client.geo.country_iso_code"),
					"transaction.name": card("transaction.name"), "user_agent.original": card("user_agent.original")},
			})
			if err != nil {
				return fmt.Errorf("rum agents: %w", err)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		out := Fragment{}
		put := func(r *searchResponse, agg string, path ...string) error {
			var v valueAgg
			found, err := r.agg(agg, &v)
			if err != nil {
				return err
			}
			if found && v.Value != nil {
				set(out, append([]string{"cardinality"}, path...), v.int())
			}
			return nil
		}
		for _, p := range []struct {
			r    *searchResponse
			agg  string
			path []string
		}{
			{rum, "client.geo.country_iso_code", []string{"client", "geo", "country_iso_code", "rum", "1d"}},
			{all, "transaction.name", []string{"transaction", "name", "all_agents", "1d"}},
			{rum, "transaction.name", []string{"transaction", "name", "rum", "1d"}},
			{all, "user_agent.original", []string{"user_agent", "original", "all_agents", "1d"}},
			{rum, "user_agent.original", []string{"user_agent", "original", "rum", "1d"}},
		} {
			if err := put(p.r, p.agg, p.path...); err != nil {
				return nil, err
			}
		}
		return out, nil
	}}
}
