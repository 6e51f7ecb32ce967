package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/es"
)

// Fragment is one task's part of the telemetry object.
type Fragment = map[string]any

// Env is what a task may use.
type Env struct {
	// ES reaches the source cluster.
	ES es.Doer
	// Indices are the APM index patterns of this run.
	Indices config.Indices
	// SearchTimeout bounds each request and is sent as the body's "timeout".
	SearchTimeout time.Duration
	// Now is the run's clock (retainment ages are measured from it).
	Now func() time.Time
	// Warn records a problem that did not fail the task (stored with the
	// task's record, never in the payload). Nil drops warnings.
	Warn func(msg string)
}

func (e Env) warn(format string, a ...any) {
	if e.Warn != nil {
		e.Warn(fmt.Sprintf(format, a...))
	}
}

// Task is one telemetry task.
type Task struct {
	// Name is the stable key of the task (tasks.<name>.took.ms); never renamed.
	Name string
	// Plugin names the object of stack_stats.kibana.plugins the task's
	// fragment belongs to: "" is the APM object (PluginAPM), the 19 data
	// tasks; the behavioural tasks fill Kibana's own collectors' objects
	// (application_usage, ui_counters), which carry no tasks.<name>.took.
	Plugin string
	// Collect runs the task's queries and returns its fragment.
	Collect func(ctx context.Context, env Env) (Fragment, error)
}

// PluginAPM is the plugin of the data telemetry tasks.
const PluginAPM = "apm"

// PluginName is the task's plugin, PluginAPM when Plugin is empty.
func (t Task) PluginName() string {
	if t.Plugin == "" {
		return PluginAPM
	}
	return t.Plugin
}

// index kinds, as in the spec's shorthands (§2.1).
const (
	kindTransaction = 'T'
	kindSpan        = 'S'
	kindError       = 'E'
	kindMetric      = 'M'
	kindOnboarding  = 'O'
)

// indices returns the configured patterns for kinds, e.g. "EMST", in that order.
func (e Env) indices(kinds string) []string {
	out := make([]string, 0, len(kinds))
	for _, k := range kinds {
		switch k {
		case kindTransaction:
			out = append(out, e.Indices.Transaction)
		case kindSpan:
			out = append(out, e.Indices.Span)
		case kindError:
			out = append(out, e.Indices.Error)
		case kindMetric:
			out = append(out, e.Indices.Metric)
		case kindOnboarding:
			out = append(out, e.Indices.Onboarding)
		default:
			panic(fmt.Sprintf("unknown index kind %q", k))
		}
	}
	return out
}

// indexList names the patterns of a request once each, for error messages:
// the kinds of a request often share patterns (apm-* is in all of them).
func indexList(indices []string) string {
	var out []string
	seen := map[string]bool{}
	for _, group := range indices {
		for _, p := range strings.Split(group, ",") {
			if p = strings.TrimSpace(p); p != "" && !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return strings.Join(out, ",")
}

// search runs a search and decodes the answer.
func (e Env) search(ctx context.Context, indices []string, body map[string]any) (*searchResponse, error) {
	req := es.Search(indices, body, e.SearchTimeout)
	return e.send(ctx, req)
}

// send runs a search request and decodes its answer; a partial answer (see
// es.Answer.Check) is an error, so it never becomes a result.
func (e Env) send(ctx context.Context, req es.Request) (*searchResponse, error) {
	name := indexList(req.Index)
	b, err := e.ES.Do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("search %s: %w", name, err)
	}
	var r searchResponse
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("search %s: decode response: %w", name, err)
	}
	body, _ := req.Body.(map[string]any)
	if err := r.Check(name, body); err != nil {
		return nil, err
	}
	return &r, nil
}

// searchResponse holds the parts of a search answer the tasks read.
type searchResponse struct {
	es.Answer
	Hits struct {
		Total *struct {
			Value int64 `json:"value"`
		} `json:"total"`
		Hits []struct {
			Fields map[string][]any `json:"fields"`
		} `json:"hits"`
	} `json:"hits"`
}

func (r *searchResponse) total() int64 {
	if r.Hits.Total == nil {
		return 0
	}
	return r.Hits.Total.Value
}

// agg decodes aggregation name into v; it reports false when absent.
func (r *searchResponse) agg(name string, v any) (bool, error) {
	raw, ok := r.Aggregations[name]
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("aggregation %s: %w", name, err)
	}
	return true, nil
}

// termsAgg is a terms aggregation's answer.
type termsAgg struct {
	Buckets []struct {
		Key      any   `json:"key"`
		DocCount int64 `json:"doc_count"`
	} `json:"buckets"`
}

// keys returns the bucket keys as strings, in order (an empty, non-nil slice when none).
func (t termsAgg) keys() []string {
	out := make([]string, 0, len(t.Buckets))
	for _, b := range t.Buckets {
		out = append(out, keyString(b.Key))
	}
	return out
}

func keyString(k any) string {
	switch v := k.(type) {
	case string:
		return v
	case float64:
		return fmt.Sprint(int64(v))
	default:
		return fmt.Sprint(v)
	}
}

// valueAgg is a single-value metric aggregation's answer (cardinality, max…).
type valueAgg struct {
	Value *float64 `json:"value"`
}

func (v valueAgg) int() int64 {
	if v.Value == nil {
		return 0
	}
	return int64(*v.Value)
}

var range1d = map[string]any{"range": map[string]any{"@timestamp": map[string]any{"gte": "now-1d"}}}

func term(field string, value any) map[string]any {
	return map[string]any{"term": map[string]any{field: value}}
}

func filter(clauses ...map[string]any) map[string]any {
	fs := make([]any, len(clauses))
	for i, c := range clauses {
		fs[i] = c
	}
	return map[string]any{"bool": map[string]any{"filter": fs}}
}

func termsOf(field string, size int) map[string]any {
	t := map[string]any{"field": field}
	if size > 0 {
		t["size"] = size
	}
	return map[string]any{"terms": t}
}

// set writes v at the dotted path inside f, creating objects on the way.
func set(f Fragment, path []string, v any) {
	m := f
	for _, p := range path[:len(path)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
}

func asESError(err error, target **es.Error) bool { return errors.As(err, target) }
