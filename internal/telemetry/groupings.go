package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
)

// Groupings reports the last day's maximum error and transaction groups per
// service, root transactions, services, environments and span destinations
// (spec §2.3.10). The span query runs on the span indices; Kibana uses the
// transaction setting, which only works while both are the same.
func Groupings() Task {
	return Task{Name: "groupings", Collect: func(ctx context.Context, env Env) (Fragment, error) {
		topPerService := func(ctx context.Context, kind, event, sub, field string) (int64, error) {
			r, err := env.search(ctx, env.indices(kind), map[string]any{
				"size": 0, "track_total_hits": false,
				"query": filter(term("processor.event", event), range1d),
				"aggs": map[string]any{"top_service": map[string]any{
					"terms": map[string]any{"field": "service.name", "size": 1, "order": map[string]any{sub: "desc"}},
					"aggs":  map[string]any{sub: map[string]any{"cardinality": map[string]any{"field": field}}},
				}},
			})
			if err != nil {
				return 0, err
			}
			var t struct {
				Buckets []map[string]json.RawMessage `json:"buckets"`
			}
			if _, err := r.agg("top_service", &t); err != nil {
				return 0, err
			}
			if len(t.Buckets) == 0 {
				return 0, nil
			}
			var v valueAgg
			if raw, ok := t.Buckets[0][sub]; ok {
				if err := json.Unmarshal(raw, &v); err != nil {
					return 0, fmt.Errorf("aggregation %s: %w", sub, err)
				}
			}
			return v.int(), nil
		}
		// Five independent searches, sent at once under the cluster-wide cap.
		var errGroups, txGroups int64
		var traces, svc, spans *searchResponse
		err := each(ctx, 5, func(ctx context.Context, i int) error {
			var err error
			switch i {
			case 0:
				if errGroups, err = topPerService(ctx, "E", "error", "error_groups", "error.grouping_key"); err != nil {
					return fmt.Errorf("error groups: %w", err)
				}
			case 1:
				if txGroups, err = topPerService(ctx, "T", "transaction", "transaction_groups", "transaction.name"); err != nil {
					return fmt.Errorf("transaction groups: %w", err)
				}
			case 2:
				traces, err = env.search(ctx, env.indices("T"), map[string]any{
					"size": 0, "track_total_hits": true,
					"query": map[string]any{"bool": map[string]any{
						"filter":   []any{term("processor.event", "transaction"), range1d},
						"must_not": map[string]any{"exists": map[string]any{"field": "parent.id"}},
					}},
				})
				if err != nil {
					return fmt.Errorf("traces: %w", err)
				}
			case 3:
				svc, err = env.search(ctx, env.indices("TEM"), map[string]any{
					"size": 0, "track_total_hits": false,
					"query": filter(range1d),
					"aggs": map[string]any{
						"service_name":         map[string]any{"cardinality": map[string]any{"field": "service.name"}},
						"service_environments": map[string]any{"cardinality": map[string]any{"field": "service.environment"}},
					},
				})
				if err != nil {
					return fmt.Errorf("services: %w", err)
				}
			case 4:
				spans, err = env.search(ctx, env.indices("S"), map[string]any{
					"size": 0, "track_total_hits": false,
					"query": filter(term("processor.event", "span"), range1d),
					"aggs": map[string]any{"span_destination_service_resource": map[string]any{
						"cardinality": map[string]any{"field": "span.destination.service.resource"}}},
				})
				if err != nil {
					return fmt.Errorf("span destinations: %w", err)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		var services, environments valueAgg
		if _, err := svc.agg("service_name", &services); err != nil {
			return nil, err
		}
		if _, err := svc.agg("service_environments", &environments); err != nil {
			return nil, err
		}
		var dest valueAgg
		if _, err := spans.agg("span_destination_service_resource", &dest); err != nil {
			return nil, err
		}
		d1 := func(v int64) map[string]any { return map[string]any{"1d": v} }
		return Fragment{"counts": map[string]any{
			"max_error_groups_per_service":       d1(errGroups),
			"max_transaction_groups_per_service": d1(txGroups),
			"traces":                             d1(traces.total()),
			"services":                           d1(services.int()),
			"environments":                       d1(environments.int()),
			"span_destination_service_resource":  d1(dest.int()),
		}}, nil
	}}
}
