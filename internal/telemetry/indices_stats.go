package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/apmtel/apmtel/internal/es"
)

var (
	rollupMetricsets = []string{"service_destination", "service_transaction", "service_summary", "transaction", "span_breakdown"}
	rollupIntervals  = []string{"1m", "10m", "60m"}
)

// statsResponse is the part of an _stats answer the task reads.
type statsResponse struct {
	Shards struct {
		Total int64 `json:"total"`
	} `json:"_shards"`
	All struct {
		Primaries docsStore `json:"primaries"`
		Total     docsStore `json:"total"`
	} `json:"_all"`
}

type docsStore struct {
	Docs struct {
		Count int64 `json:"count"`
	} `json:"docs"`
	Store struct {
		SizeInBytes int64 `json:"size_in_bytes"`
	} `json:"store"`
}

func (d docsStore) fragment() map[string]any {
	return map[string]any{"docs": map[string]any{"count": d.Docs.Count}, "store": map[string]any{"size_in_bytes": d.Store.SizeInBytes}}
}

func (e Env) stats(ctx context.Context, indices []string, filtered bool) (statsResponse, error) {
	// As in Kibana: the per-metricset calls (filtered) expand wildcards to
	// hidden and closed indices too, the totals use the default (open).
	params := url.Values{"ignore_unavailable": {"true"}, "allow_no_indices": {"true"}}
	if filtered {
		params.Set("expand_wildcards", "all")
		params.Set("filter_path", "_all.primaries.docs,_all.primaries.store,_shards")
	}
	var s statsResponse
	b, err := e.ES.Do(ctx, es.Request{Method: "GET", Index: indices, Endpoint: "_stats", Params: params, Timeout: e.SearchTimeout})
	if err != nil {
		return s, fmt.Errorf("stats %s: %w", indexList(indices), err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("stats %s: decode response: %w", indexList(indices), err)
	}
	return s, nil
}

// IndicesStats reports shard, document and size figures of the APM indices
// and of each rollup metricset, and the last day's document count per
// metricset (spec §2.3.13). Kibana sends the _stats calls one after another
// to spare the customer's cluster; we send them at once, and the cluster-wide
// cap spares it. Unlike Kibana, a missing agent-configuration
// index, an unknown metricset.interval or more than 10 metricset names
// neither fail the task nor hide metricsets.
func IndicesStats() Task {
	return Task{Name: "indices_stats", Collect: func(ctx context.Context, env Env) (Fragment, error) {
		p := env.Indices.MetricsDataStreamPrefix
		metricset := map[string]any{}
		entry := func(key string) map[string]any {
			m, ok := metricset[key].(map[string]any)
			if !ok {
				m = map[string]any{}
				metricset[key] = m
			}
			return m
		}
		primaries := func(s statsResponse) map[string]any {
			f := s.All.Primaries.fragment()
			f["shards"] = s.Shards.Total
			return map[string]any{"total": f}
		}
		// 15 rollup _stats, the app _stats, the metricset search and three
		// totals _stats: independent, sent at once under the cluster-wide cap.
		nRollup := len(rollupMetricsets) * len(rollupIntervals)
		stats := make([]statsResponse, nRollup+4) // rollups, app, all, metric, traces
		var r *searchResponse
		err := each(ctx, len(stats)+1, func(ctx context.Context, i int) error {
			var err error
			switch {
			case i < nRollup:
				ms, iv := rollupMetricsets[i/len(rollupIntervals)], rollupIntervals[i%len(rollupIntervals)]
				stats[i], err = env.stats(ctx, []string{p + "metrics-apm." + ms + "." + iv + "-*"}, true)
			case i == nRollup:
				stats[i], err = env.stats(ctx, []string{p + "metrics-apm.app*"}, true)
			case i == nRollup+1:
				stats[i], err = env.stats(ctx, append([]string{env.Indices.AgentConfiguration}, env.indices("EMOST")...), false)
			case i == nRollup+2:
				stats[i], err = env.stats(ctx, env.indices("M"), false)
			case i == nRollup+3:
				stats[i], err = env.stats(ctx, env.indices("ST"), false)
			default:
				r, err = env.searchExpandAll(ctx, env.indices("M"), map[string]any{
					"track_total_hits": false, "size": 0,
					"query": range1d,
					"aggs": map[string]any{"metricsets": map[string]any{
						"terms": map[string]any{"field": "metricset.name", "size": 100},
						"aggs": map[string]any{"rollup_interval": map[string]any{
							"terms": map[string]any{"field": "metricset.interval", "size": 10},
							"aggs":  map[string]any{"metrics_value_count": map[string]any{"value_count": map[string]any{"field": "metricset.interval"}}},
						}},
					}},
				})
				if err != nil {
					err = fmt.Errorf("metricsets: %w", err)
				}
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		for i, ms := range rollupMetricsets {
			for j, iv := range rollupIntervals {
				entry(ms + "-" + iv)["all"] = primaries(stats[i*len(rollupIntervals)+j])
			}
		}
		entry("app")["all"] = primaries(stats[nRollup])
		all, metric, traces := stats[nRollup+1], stats[nRollup+2], stats[nRollup+3]

		for _, ms := range rollupMetricsets {
			for _, iv := range rollupIntervals {
				entry(ms + "-" + iv)["1d"] = map[string]any{"doc_count": int64(0)}
			}
		}
		entry("app")["1d"] = map[string]any{"doc_count": int64(0)}
		var msAgg struct {
			Buckets []struct {
				Key      string `json:"key"`
				DocCount int64  `json:"doc_count"`
				Interval struct {
					Buckets []struct {
						Key   string   `json:"key"`
						Count valueAgg `json:"metrics_value_count"`
					} `json:"buckets"`
				} `json:"rollup_interval"`
			} `json:"buckets"`
		}
		if _, err := r.agg("metricsets", &msAgg); err != nil {
			return nil, err
		}
		rollup := map[string]bool{}
		for _, ms := range rollupMetricsets {
			rollup[ms] = true
		}
		for _, b := range msAgg.Buckets {
			switch {
			case b.Key == "app":
				entry("app")["1d"] = map[string]any{"doc_count": b.DocCount}
			case rollup[b.Key]:
				for _, ib := range b.Interval.Buckets {
					key := b.Key + "-" + ib.Key
					if _, known := metricset[key]; !known {
						env.warn("metricset %s has unexpected interval %q; ignored", b.Key, ib.Key)
						continue
					}
					// value_count counts documents; doc_count would count pre-aggregated _doc_count.
					entry(key)["1d"] = map[string]any{"doc_count": ib.Count.int()}
				}
			}
		}

		totals := func(s statsResponse) map[string]any {
			return map[string]any{"shards": map[string]any{"total": s.Shards.Total}, "all": map[string]any{"total": s.All.Total.fragment()}}
		}
		out := totals(all)
		m := totals(metric)
		m["metricset"] = metricset
		out["metric"] = m
		out["traces"] = totals(traces)
		return Fragment{"indices": out}, nil
	}}
}

// searchExpandAll is env.search with expand_wildcards=all, which Kibana
// sets on the last-day metricset search (hidden data streams included).
func (e Env) searchExpandAll(ctx context.Context, indices []string, body map[string]any) (*searchResponse, error) {
	req := es.Search(indices, body, e.SearchTimeout)
	req.Params.Set("expand_wildcards", "all")
	return e.send(ctx, req)
}
