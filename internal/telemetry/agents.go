package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
)

const agentAggSize = 3

// agentNameAggs is Kibana's aggregation set of the agents task (spec §2.3.12).
func agentNameAggs() map[string]any {
	withSub := func(name, sub string) map[string]any {
		return map[string]any{"terms": map[string]any{"field": name, "size": agentAggSize},
			"aggs": map[string]any{sub: termsOf(sub, agentAggSize)}}
	}
	return map[string]any{
		"agent.activation_method":   termsOf("agent.activation_method", agentAggSize),
		"agent.version":             termsOf("agent.version", agentAggSize),
		"service.framework.name":    withSub("service.framework.name", "service.framework.version"),
		"service.framework.version": termsOf("service.framework.version", agentAggSize),
		"service.language.name":     withSub("service.language.name", "service.language.version"),
		"service.language.version":  termsOf("service.language.version", agentAggSize),
		"service.runtime.name":      withSub("service.runtime.name", "service.runtime.version"),
		"service.runtime.version":   termsOf("service.runtime.version", agentAggSize),
	}
}

// nestedTerms is a terms answer whose buckets may hold a sub terms aggregation.
type nestedTerms struct {
	Buckets []map[string]json.RawMessage `json:"buckets"`
}

func firstN(xs []string, n int) []string {
	if len(xs) > n {
		return xs[:n]
	}
	return xs
}

// agentData maps one set of agentNameAggs answers to Kibana's agent object.
func agentData(aggs map[string]json.RawMessage) (map[string]any, error) {
	keysOf := func(name string) ([]string, error) {
		var t termsAgg
		if raw, ok := aggs[name]; ok {
			if err := json.Unmarshal(raw, &t); err != nil {
				return nil, fmt.Errorf("aggregation %s: %w", name, err)
			}
		}
		return firstN(t.keys(), agentAggSize), nil
	}
	out := map[string]any{}
	activation, err := keysOf("agent.activation_method")
	if err != nil {
		return nil, err
	}
	version, err := keysOf("agent.version")
	if err != nil {
		return nil, err
	}
	out["agent"] = map[string]any{"activation_method": activation, "version": version}
	service := map[string]any{}
	for _, x := range []string{"framework", "language", "runtime"} {
		nameAgg, versionAgg := "service."+x+".name", "service."+x+".version"
		names, err := keysOf(nameAgg)
		if err != nil {
			return nil, err
		}
		versions, err := keysOf(versionAgg)
		if err != nil {
			return nil, err
		}
		composite, err := compositeLabels(aggs[nameAgg], versionAgg)
		if err != nil {
			return nil, err
		}
		service[x] = map[string]any{"name": names, "version": versions, "composite": composite}
	}
	out["service"] = service
	return out, nil
}

// compositeLabels builds the "name/version" labels of the name buckets' version
// sub-buckets, ordered as Kibana does: stable sort by doc_count ascending,
// then the whole list reversed (ties end in reverse order of appearance), first 3.
func compositeLabels(raw json.RawMessage, sub string) ([]string, error) {
	type rec struct {
		label string
		count int64
	}
	var recs []rec
	if raw != nil {
		var t nestedTerms
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, err
		}
		for _, b := range t.Buckets {
			var key any
			_ = json.Unmarshal(b["key"], &key)
			var subAgg struct {
				Buckets []struct {
					Key      any   `json:"key"`
					DocCount int64 `json:"doc_count"`
				} `json:"buckets"`
			}
			if s, ok := b[sub]; ok {
				if err := json.Unmarshal(s, &subAgg); err != nil {
					return nil, err
				}
			}
			for _, vb := range subAgg.Buckets {
				recs = append(recs, rec{keyString(key) + "/" + keyString(vb.Key), vb.DocCount})
			}
		}
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].count < recs[j].count })
	out := make([]string, 0, agentAggSize)
	for i := len(recs) - 1; i >= 0 && len(out) < agentAggSize; i-- {
		out = append(out, recs[i].label)
	}
	return out, nil
}

// Agents reports, per agent, the top 3 agent versions and activation
// methods and the top service frameworks, languages and runtimes of the last
// day (spec §2.3.12). Each agent name is queried once, all at once under the
// cluster-wide cap (Kibana: one after another).
func Agents() Task {
	return Task{Name: "agents", Collect: func(ctx context.Context, env Env) (Fragment, error) {
		idx := env.indices("EMT")
		n := len(agentNamesWithoutOTel)
		resp := make([]*searchResponse, n+len(otelBaseAgentNames))
		err := each(ctx, len(resp), func(ctx context.Context, i int) error {
			var err error
			if i < n {
				name := agentNamesWithoutOTel[i]
				resp[i], err = env.search(ctx, idx, map[string]any{
					"track_total_hits": false, "size": 0,
					"query": filter(term("agent.name", name), range1d),
					"sort":  map[string]any{"@timestamp": "desc"},
					"aggs":  agentNameAggs(),
				})
				if err != nil {
					return fmt.Errorf("agent %s: %w", name, err)
				}
				return nil
			}
			base := otelBaseAgentNames[i-n]
			resp[i], err = env.search(ctx, idx, map[string]any{
				"track_total_hits": false, "size": 0,
				"query": filter(map[string]any{"prefix": map[string]any{"agent.name": base}}, range1d),
				"sort":  map[string]any{"@timestamp": "desc"}, // as Kibana sends it; no effect with size 0
				"aggs": map[string]any{"agent_name": map[string]any{
					"terms": map[string]any{"field": "agent.name", "size": 1000},
					"aggs":  agentNameAggs(),
				}},
			})
			if err != nil {
				return fmt.Errorf("agent prefix %s: %w", base, err)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		out := map[string]any{}
		for i, name := range agentNamesWithoutOTel {
			r := resp[i]
			if r.Aggregations == nil {
				continue
			}
			data, err := agentData(r.Aggregations)
			if err != nil {
				return nil, fmt.Errorf("agent %s: %w", name, err)
			}
			out[name] = data
		}
		for _, r := range resp[n:] {
			var t nestedTerms
			if _, err := r.agg("agent_name", &t); err != nil {
				return nil, err
			}
			for _, b := range t.Buckets {
				var key any
				_ = json.Unmarshal(b["key"], &key)
				data, err := agentData(b)
				if err != nil {
					return nil, fmt.Errorf("agent %v: %w", key, err)
				}
				out[keyString(key)] = data
			}
		}
		return Fragment{"agents": out}, nil
	}}
}
