package telemetry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/apmtel/apmtel/internal/es"
)

// perServiceMetrics are the fields of one sample document (top_metrics).
var perServiceMetrics = []string{
	"agent.activation_method", "agent.name", "agent.version",
	"service.language.name", "service.language.version",
	"service.framework.name", "service.framework.version",
	"service.runtime.name", "service.runtime.version",
	"kubernetes.pod.name", "container.id",
}

func perServiceBody(sample map[string]any) map[string]any {
	return map[string]any{
		"track_total_hits": false, "size": 0,
		"query": filter(map[string]any{"range": map[string]any{"@timestamp": map[string]any{"gte": "now-1h"}}},
			term("processor.event", "transaction")),
		"aggs": map[string]any{"service_names": map[string]any{
			"terms": map[string]any{"field": "service.name", "size": 2500},
			"aggs": map[string]any{"environments": map[string]any{
				"terms": map[string]any{"field": "service.environment", "size": 5},
				"aggs": map[string]any{
					"instances":               map[string]any{"cardinality": map[string]any{"field": "service.node.name"}},
					"transaction_types":       map[string]any{"cardinality": map[string]any{"field": "transaction.type"}},
					"top_metrics":             sample,
					"cloud.region":            termsOf("cloud.region", 5),
					"cloud.provider":          termsOf("cloud.provider", 3),
					"cloud.availability_zone": termsOf("cloud.availability_zone", 5),
					"faas.trigger.type":       termsOf("faas.trigger.type", 5),
				},
			}},
		}},
	}
}

func topMetricsAgg() map[string]any {
	metrics := make([]any, len(perServiceMetrics))
	for i, f := range perServiceMetrics {
		metrics[i] = map[string]any{"field": f}
	}
	return map[string]any{"top_metrics": map[string]any{"sort": "_score", "metrics": metrics}}
}

// topHitsAgg is the fallback for clusters without top_metrics (Elasticsearch
// before 7.7, OpenSearch): one arbitrary document's doc values, which is
// what top_metrics sorted by _score in filter context picks too.
func topHitsAgg() map[string]any {
	fields := make([]any, len(perServiceMetrics))
	for i, f := range perServiceMetrics {
		fields[i] = f
	}
	return map[string]any{"top_hits": map[string]any{"size": 1, "_source": false, "docvalue_fields": fields}}
}

func sha256hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// ServiceID is Kibana's per_service id: sha256hex(environment) "~"
// sha256hex(service name); the environment comes first, whatever Kibana's
// variable names suggest, and we keep that order so the ids match Kibana's.
func ServiceID(serviceName, environment string) string {
	return sha256hex(environment) + "~" + sha256hex(serviceName)
}

// PerService reports, per service and environment of the last hour, hashed
// ids, instance and transaction-type counts, clouds and one sample
// document's agent and runtime (spec §2.3.17).
func PerService() Task {
	return Task{Name: "per_service", Collect: func(ctx context.Context, env Env) (Fragment, error) {
		idx := env.indices("T")
		r, err := env.search(ctx, idx, perServiceBody(topMetricsAgg()))
		fallback := false
		if err != nil {
			var e *es.Error
			if !asESError(err, &e) || e.Status != 400 || !strings.Contains(e.Error(), "top_metrics") {
				return nil, err
			}
			env.warn("top_metrics is not supported by this cluster (%s); sampled with top_hits", e.Reason)
			fallback = true
			if r, err = env.search(ctx, idx, perServiceBody(topHitsAgg())); err != nil {
				return nil, err
			}
		}
		var services struct {
			Buckets []struct {
				Key          string `json:"key"`
				Environments struct {
					Buckets []map[string]json.RawMessage `json:"buckets"`
				} `json:"environments"`
			} `json:"buckets"`
		}
		if _, err := r.agg("service_names", &services); err != nil {
			return nil, err
		}
		out := []any{}
		for _, sb := range services.Buckets {
			for _, eb := range sb.Environments.Buckets {
				item, err := perServiceItem(sb.Key, eb, r.TimedOut, fallback)
				if err != nil {
					return nil, fmt.Errorf("service %s: %w", sb.Key, err)
				}
				out = append(out, item)
			}
		}
		return Fragment{"per_service": out}, nil
	}}
}

func perServiceItem(service string, b map[string]json.RawMessage, timedOut, fallback bool) (map[string]any, error) {
	var envKey any
	if err := json.Unmarshal(b["key"], &envKey); err != nil {
		return nil, err
	}
	var instances, types valueAgg
	_ = json.Unmarshal(b["instances"], &instances)
	_ = json.Unmarshal(b["transaction_types"], &types)
	terms := func(name string) []string {
		var t termsAgg
		_ = json.Unmarshal(b[name], &t)
		return t.keys()
	}
	metrics, err := sampleMetrics(b["top_metrics"], fallback)
	if err != nil {
		return nil, err
	}
	m := func(f string) any { return metrics[f] }
	return map[string]any{
		"service_id":            ServiceID(service, keyString(envKey)),
		"timed_out":             timedOut,
		"num_service_nodes":     instances.int(),
		"num_transaction_types": types.int(),
		"cloud": map[string]any{
			"availability_zones": terms("cloud.availability_zone"),
			"regions":            terms("cloud.region"),
			"providers":          terms("cloud.provider"),
		},
		"faas":  map[string]any{"trigger": map[string]any{"type": terms("faas.trigger.type")}},
		"agent": map[string]any{"name": m("agent.name"), "version": m("agent.version"), "activation_method": m("agent.activation_method")},
		"service": map[string]any{
			"language":  map[string]any{"name": m("service.language.name"), "version": m("service.language.version")},
			"framework": map[string]any{"name": m("service.framework.name"), "version": m("service.framework.version")},
			"runtime":   map[string]any{"name": m("service.runtime.name"), "version": m("service.runtime.version")},
		},
		"kubernetes": map[string]any{"pod": map[string]any{"name": m("kubernetes.pod.name")}},
		"container":  map[string]any{"id": m("container.id")},
	}, nil
}

// sampleMetrics returns field → value (nil when missing) of the sample document.
func sampleMetrics(raw json.RawMessage, fallback bool) (map[string]any, error) {
	out := map[string]any{}
	for _, f := range perServiceMetrics {
		out[f] = nil
	}
	if raw == nil {
		return out, nil
	}
	if !fallback {
		var tm struct {
			Top []struct {
				Metrics map[string]any `json:"metrics"`
			} `json:"top"`
		}
		if err := json.Unmarshal(raw, &tm); err != nil {
			return nil, fmt.Errorf("top_metrics: %w", err)
		}
		if len(tm.Top) > 0 {
			for f, v := range tm.Top[0].Metrics {
				if _, known := out[f]; known {
					out[f] = v
				}
			}
		}
		return out, nil
	}
	var th struct {
		Hits struct {
			Hits []struct {
				Fields map[string][]any `json:"fields"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(raw, &th); err != nil {
		return nil, fmt.Errorf("top_hits: %w", err)
	}
	if len(th.Hits.Hits) > 0 {
		for f, vs := range th.Hits.Hits[0].Fields {
			if _, known := out[f]; known && len(vs) > 0 {
				out[f] = vs[0]
			}
		}
	}
	return out, nil
}
