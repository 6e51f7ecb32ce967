package telemetry

import (
	"context"
	"fmt"
	"math"
	"time"
)

// compositePageSize is Kibana's composite page size for this task.
const compositePageSize = 10000

// The painless scripts read doc values (Kibana's newest code uses the
// $('field', default) shortcut, which needs Elasticsearch 8; doc values give
// the same values on every version). containsKey guards unmapped fields.
const (
	scriptUserAgentName = `if (doc.containsKey('transaction.type') && doc['transaction.type'].size() > 0 && doc['transaction.type'].value == 'page-load' && doc.containsKey('user_agent.name') && doc['user_agent.name'].size() > 0) { return doc['user_agent.name'].value; } return null;`
	scriptRoot          = `return !doc.containsKey('parent.id') || doc['parent.id'].size() == 0;`
	scriptCountry       = `if (doc.containsKey('transaction.type') && doc['transaction.type'].size() > 0 && doc['transaction.type'].value == 'page-load' && doc.containsKey('client.geo.country_iso_code') && doc['client.geo.country_iso_code'].size() > 0) { return doc['client.geo.country_iso_code'].value; } return null;`
)

func fieldSource(field string) map[string]any {
	return map[string]any{"terms": map[string]any{"field": field, "missing_bucket": true}}
}

func scriptSource(script string) map[string]any {
	return map[string]any{"terms": map[string]any{"script": map[string]any{"lang": "painless", "source": script}, "missing_bucket": true}}
}

// aggregatedTransactionSources returns the sources of one variant (spec §2.3.1).
func aggregatedTransactionSources(observer, country bool) []any {
	base := []map[string]any{
		fieldSource("transaction.name"), fieldSource("transaction.result"), fieldSource("transaction.type"),
		fieldSource("agent.name"), fieldSource("service.environment"), fieldSource("service.version"),
		fieldSource("host.name"), fieldSource("container.id"), fieldSource("kubernetes.pod.name"),
		scriptSource(scriptUserAgentName), scriptSource(scriptRoot),
	}
	if observer {
		base = append(base, fieldSource("observer.hostname"))
	}
	if country {
		base = append(base, scriptSource(scriptCountry))
	}
	out := make([]any, len(base))
	for i, s := range base {
		out[i] = map[string]any{fmt.Sprint(i): s}
	}
	return out
}

// AggregatedTransactions estimates how many transaction metric documents
// APM Server would write for one minute of traffic under three candidate
// aggregation keys (spec §2.3.1). A ratio that is not a finite number
// (an empty window) is left out; Kibana sends null. Pages are read until
// the answer has no after_key, as Kibana does.
func AggregatedTransactions() Task {
	return Task{Name: "aggregated_transactions", Collect: func(ctx context.Context, env Env) (Fragment, error) {
		idx := env.indices("T")
		anchor, err := env.search(ctx, idx, map[string]any{
			"size":             1,
			"track_total_hits": false,
			"query":            filter(term("processor.event", "transaction")),
			"sort":             map[string]any{"@timestamp": "desc"},
			"fields":           []any{"@timestamp"},
		})
		if err != nil {
			return nil, fmt.Errorf("newest transaction: %w", err)
		}
		if len(anchor.Hits.Hits) == 0 {
			return Fragment{}, nil
		}
		newest, err := firstTimestamp(anchor.Hits.Hits[0].Fields)
		if err != nil {
			return nil, fmt.Errorf("newest transaction: %w", err)
		}
		end := newest.Add(-5 * time.Minute)
		start := end.Add(-time.Minute)
		variants := []struct {
			name              string
			observer, country bool
		}{
			{"current_implementation", true, false},
			{"with_country", true, true},
			{"no_observer_name", false, false},
		}
		// The variants page independently: their page sequences run at once.
		expected, total := make([]int64, len(variants)), make([]int64, len(variants))
		err = each(ctx, len(variants), func(ctx context.Context, i int) error {
			v := variants[i]
			var err error
			if expected[i], total[i], err = countCompositeBuckets(ctx, env, idx, start, end, aggregatedTransactionSources(v.observer, v.country)); err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		out := map[string]any{}
		for i, v := range variants {
			expected, total := expected[i], total[i]
			res := map[string]any{"expected_metric_document_count": expected, "transaction_count": total}
			if ratio := float64(expected) / float64(total); !math.IsNaN(ratio) && !math.IsInf(ratio, 0) {
				res["ratio"] = ratio
			}
			out[v.name] = res
		}
		return Fragment{"aggregated_transactions": out}, nil
	}}
}

// countCompositeBuckets pages through the composite aggregation and counts buckets.
func countCompositeBuckets(ctx context.Context, env Env, idx []string, start, end time.Time, sources []any) (int64, int64, error) {
	var after map[string]any
	var buckets, total int64
	for {
		comp := map[string]any{"size": compositePageSize, "sources": sources}
		if after != nil {
			comp["after"] = after
		}
		r, err := env.search(ctx, idx, map[string]any{
			"track_total_hits": true,
			"size":             0,
			"query": filter(term("processor.event", "transaction"),
				map[string]any{"range": map[string]any{"@timestamp": map[string]any{"gte": start.UnixMilli(), "lt": end.UnixMilli()}}}),
			"aggs": map[string]any{"transaction_metric_groups": map[string]any{"composite": comp}},
		})
		if err != nil {
			return 0, 0, err
		}
		total = r.total()
		var c struct {
			AfterKey map[string]any `json:"after_key"`
			Buckets  []struct{}     `json:"buckets"`
		}
		found, err := r.agg("transaction_metric_groups", &c)
		if err != nil {
			return 0, 0, err
		}
		if !found {
			return buckets, total, nil
		}
		buckets += int64(len(c.Buckets))
		// Kibana pages until the answer has no after_key (Elasticsearch
		// still sends one after a short page, so the last request is empty).
		if c.AfterKey == nil {
			return buckets, total, nil
		}
		after = c.AfterKey
	}
}
