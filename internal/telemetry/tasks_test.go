package telemetry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/apmtel/apmtel/internal/es"
)

// TestGoldenRequests records every task's requests against a fake cluster
// with empty answers and compares them with testdata/requests/<task>.json.
func TestGoldenRequests(t *testing.T) {
	for _, task := range Default().All() {
		t.Run(task.Name, func(t *testing.T) {
			rec := &recorder{answer: golden200}
			if _, err := task.Collect(context.Background(), testEnv(rec)); err != nil {
				t.Fatalf("collect: %v", err)
			}
			if len(rec.reqs) == 0 {
				t.Fatal("task sent no request")
			}
			for _, r := range rec.reqs {
				if len(r.Index) == 0 && !r.ClusterWide {
					t.Errorf("request %s has no index", r.Path())
				}
				if r.Endpoint == "_search" && !strings.Contains(r.Path(), "ignore_unavailable=true") {
					t.Errorf("search %s lacks ignore_unavailable", r.Path())
				}
			}
			checkGolden(t, task.Name, rec.reqs)
		})
	}
}

// golden200 answers with the smallest valid response of each endpoint.
func golden200(_ int, r es.Request) (string, error) {
	return `{"took":1,"timed_out":false,"hits":{"total":{"value":0},"hits":[]}}`, nil
}

func TestTasksFailOnErrors(t *testing.T) {
	for _, task := range Default().All() {
		t.Run(task.Name, func(t *testing.T) {
			rec := &recorder{answer: func(int, es.Request) (string, error) {
				return "", &es.Error{Status: 503, Type: "unavailable", Reason: "down"}
			}}
			_, err := task.Collect(context.Background(), testEnv(rec))
			var e *es.Error
			if !errors.As(err, &e) || e.Status != 503 {
				t.Errorf("want wrapped 503, got %v", err)
			}
			rec = &recorder{answer: always(`{not json`)}
			if _, err := task.Collect(context.Background(), testEnv(rec)); err == nil || !strings.Contains(err.Error(), "decode") {
				t.Errorf("want decode error, got %v", err)
			}
		})
	}
}

func TestTasksStopOnCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, task := range Default().All() {
		rec := &recorder{answer: golden200}
		if _, err := task.Collect(ctx, testEnv(rec)); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: want context.Canceled, got %v", task.Name, err)
		}
	}
}

func TestCloudAndHost(t *testing.T) {
	tests := []struct {
		name, resp          string
		wantCloud, wantHost string
	}{
		{"normal", `{"aggregations":{
			"availability_zone":{"buckets":[{"key":"us-east-1a","doc_count":5},{"key":"us-east-1b","doc_count":2}]},
			"provider":{"buckets":[{"key":"aws","doc_count":7}]},
			"region":{"buckets":[{"key":"us-east-1","doc_count":7}]},
			"platform":{"buckets":[{"key":"linux","doc_count":6},{"key":"windows","doc_count":1}]}}}`,
			`{"availability_zone":["us-east-1a","us-east-1b"],"provider":["aws"],"region":["us-east-1"]}`, `["linux","windows"]`},
		{"empty indices", `{"hits":{"total":{"value":0},"hits":[]},"aggregations":{"availability_zone":{"buckets":[]},"provider":{"buckets":[]},"region":{"buckets":[]},"platform":{"buckets":[]}}}`,
			`{"availability_zone":[],"provider":[],"region":[]}`, `[]`},
		{"missing aggregations", `{"hits":{"hits":[]}}`, `{"availability_zone":[],"provider":[],"region":[]}`, `[]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Cloud().Collect(context.Background(), testEnv(&recorder{answer: always(tc.resp)}))
			if err != nil {
				t.Fatal(err)
			}
			if d := diffJSON(t, tc.wantCloud, f["cloud"]); d != "" {
				t.Errorf("cloud (-want +got):\n%s", d)
			}
			f, err = Host().Collect(context.Background(), testEnv(&recorder{answer: always(tc.resp)}))
			if err != nil {
				t.Fatal(err)
			}
			if d := diffJSON(t, tc.wantHost, f["host"].(map[string]any)["os"].(map[string]any)["platform"]); d != "" {
				t.Errorf("host (-want +got):\n%s", d)
			}
		})
	}
}

func TestProcessorEvents(t *testing.T) {
	// Counts answer 10*i+range; retainment answers an oldest document 1 day
	// old for errors and nothing for the others.
	answer := func(i int, r es.Request) (string, error) {
		b := r.Body.(map[string]any)
		if _, ok := b["sort"]; ok {
			if strings.Contains(r.Path(), "logs-apm") {
				return `{"hits":{"hits":[{"fields":{"@timestamp":["2026-11-25T12:00:00.000Z"]}}]}}`, nil
			}
			return `{"hits":{"hits":[]}}`, nil
		}
		return `{"hits":{"total":{"value":` + fmt.Sprint(countOf(t, r)) + `}}}`, nil
	}
	f, err := ProcessorEvents().Collect(context.Background(), testEnv(&recorder{answer: answer}))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"counts":{"error":{"1d":1,"all":2},"metric":{"1d":3,"all":4},"onboarding":{"1d":9,"all":10},"span":{"1d":5,"all":6},"transaction":{"1d":7,"all":8}},"retainment":{"error":{"ms":86400000}}}`
	if d := diffJSON(t, want, f); d != "" {
		t.Errorf("fragment (-want +got):\n%s", d)
	}
	// Answers without totals read as 0, never fail.
	f, err = ProcessorEvents().Collect(context.Background(), testEnv(&recorder{answer: always(`{"hits":{"hits":[]}}`)}))
	if err != nil {
		t.Fatal(err)
	}
	if d := diffJSON(t, `{"1d":0,"all":0}`, f["counts"].(map[string]any)["span"]); d != "" {
		t.Errorf("no totals: counts.span (-want +got):\n%s", d)
	}
	// A hit without @timestamp (Elasticsearch then sends no "fields") leaves
	// that retainment out and keeps the counts, as Kibana does; a warning says so.
	env := testEnv(&recorder{answer: always(`{"hits":{"total":{"value":1},"hits":[{"_id":"x"}]}}`)})
	var warnings []string
	env.Warn = func(m string) { warnings = append(warnings, m) }
	f, err = ProcessorEvents().Collect(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffJSON(t, `{"1d":1,"all":1}`, f["counts"].(map[string]any)["error"]); f["retainment"] != nil || d != "" {
		t.Errorf("hit without @timestamp: retainment %v, counts.error (-want +got):\n%s", f["retainment"], d)
	}
	if len(warnings) != 5 || !strings.Contains(warnings[0], "no @timestamp") {
		t.Errorf("warnings %q", warnings)
	}
}

// countOf answers a processor_events count by content (the requests arrive
// in any order): events in Kibana's order count 1, 3, 5, 7, 9 over the last
// day and one more over all time.
func countOf(t *testing.T, r es.Request) int {
	q := asJSON(t, r.Body.(map[string]any)["query"])
	for e, ev := range processorEvents {
		if strings.Contains(q, `"processor.event":"`+ev.name+`"`) {
			if strings.Contains(q, `"range"`) {
				return 2*e + 1
			}
			return 2*e + 2
		}
	}
	t.Errorf("unexpected query %s", q)
	return 0
}

func TestAgentConfiguration(t *testing.T) {
	tests := []struct{ name, resp, want string }{
		{"normal", `{"hits":{"total":{"value":3},"hits":[]}}`, `{"counts":{"agent_configuration":{"all":3}}}`},
		// ignore_unavailable turns a missing index into an empty answer: 0, not a failure.
		{"missing index", `{"_shards":{"total":0},"hits":{"total":{"value":0},"hits":[]}}`, `{"counts":{"agent_configuration":{"all":0}}}`},
	}
	for _, tc := range tests {
		f, err := AgentConfiguration().Collect(context.Background(), testEnv(&recorder{answer: always(tc.resp)}))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if d := diffJSON(t, tc.want, f); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
	}
}

func TestVersions(t *testing.T) {
	tests := []struct{ name, resp, want string }{
		{"release", `{"hits":{"hits":[{"fields":{"observer.version":["8.15.2"]}}]}}`, `{"version":{"apm_server":{"major":8,"minor":15,"patch":2}}}`},
		{"snapshot keeps patch", `{"hits":{"hits":[{"fields":{"observer.version":["8.0.0-SNAPSHOT"]}}]}}`, `{"version":{"apm_server":{"major":8,"minor":0,"patch":0}}}`},
		{"garbage part left out", `{"hits":{"hits":[{"fields":{"observer.version":["8.x"]}}]}}`, `{"version":{"apm_server":{"major":8}}}`},
		{"no hit", `{"hits":{"hits":[]}}`, `{}`},
		{"no field", `{"hits":{"hits":[{"fields":{}}]}}`, `{}`},
	}
	for _, tc := range tests {
		f, err := Versions().Collect(context.Background(), testEnv(&recorder{answer: always(tc.resp)}))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if d := diffJSON(t, tc.want, f); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
	}
}

func TestRegistry(t *testing.T) {
	r := Default()
	if _, err := r.Select([]string{"cloud", "nosuch"}); err == nil || !strings.Contains(err.Error(), "unknown telemetry task nosuch") {
		t.Errorf("unknown task error = %v", err)
	}
	sel, err := r.Select([]string{"versions", "cloud"})
	if err != nil || len(sel) != 2 || sel[0].Name != "cloud" {
		t.Errorf("Select keeps registry order: %v %v", sel, err)
	}
	if _, err := NewRegistry(Cloud(), Cloud()); err == nil {
		t.Error("duplicate task accepted")
	}
}

func TestMerge(t *testing.T) {
	dst := map[string]any{"counts": map[string]any{"error": map[string]any{"1d": 1}}, "x": 1}
	Merge(dst, map[string]any{"counts": map[string]any{"span": map[string]any{"1d": 2}}, "x": 2, "l": []any{"a"}})
	want := `{"counts":{"error":{"1d":1},"span":{"1d":2}},"l":["a"],"x":2}`
	if d := diffJSON(t, want, dst); d != "" {
		t.Errorf("merge (-want +got):\n%s", d)
	}
	f := WithTook(Fragment{}, "cloud", 12)
	if d := diffJSON(t, `{"tasks":{"cloud":{"took":{"ms":12}}}}`, f); d != "" {
		t.Errorf("took (-want +got):\n%s", d)
	}
}

// Every task copes with the degenerate answers of a real cluster: indices
// that do not exist (ignore_unavailable gives an empty answer with no
// shards), shards skipped as unable to match, and answers without
// aggregations or _shards. Each search also carries the shard-level timeout.
// An answer the cluster marks as partial — timed out, a failed shard, or
// searched shards but an asked-for aggregation missing — fails every task
// with an es.PartialError naming the index (never zeros recorded as good).
func TestDegenerateAnswers(t *testing.T) {
	answers := map[string]string{
		"missing indices": `{"took":0,"timed_out":false,"_shards":{"total":0,"successful":0,"skipped":0,"failed":0},"hits":{"total":{"value":0,"relation":"eq"},"max_score":0,"hits":[]}}`,
		"no aggregations": `{"hits":{"hits":[]}}`,
		"skipped shards":  `{"took":0,"timed_out":false,"_shards":{"total":0,"successful":0,"skipped":2,"failed":0},"hits":{"total":{"value":0,"relation":"eq"},"hits":[]}}`,
	}
	partial := map[string]string{
		"timed out":     `{"took":5,"timed_out":true,"_shards":{"total":0,"successful":0,"skipped":0,"failed":0},"hits":{"total":{"value":3,"relation":"gte"},"hits":[]}}`,
		"failed shards": `{"took":5,"timed_out":false,"_shards":{"total":0,"successful":0,"skipped":0,"failed":2,"failures":[{"index":"apm-1","reason":{"type":"x","reason":"y"}}]},"hits":{"total":{"value":3,"relation":"eq"},"hits":[]}}`,
	}
	for _, task := range Default().All() {
		for name, body := range partial {
			if task.Name == "global_labels" || task.Name == "integrations" {
				continue // no search: a mapping and the ML jobs
			}
			t.Run(task.Name+"/"+name, func(t *testing.T) {
				_, err := task.Collect(context.Background(), testEnv(&recorder{answer: always(body)}))
				var pe *es.PartialError
				if !errors.As(err, &pe) || pe.Index == "" || !strings.Contains(err.Error(), "partial answer from "+pe.Index) {
					t.Fatalf("err = %v, want a partial answer naming the index", err)
				}
			})
		}
		for name, body := range answers {
			t.Run(task.Name+"/"+name, func(t *testing.T) {
				rec := &recorder{answer: always(body)}
				f, err := task.Collect(context.Background(), testEnv(rec))
				if err != nil {
					t.Fatalf("%v", err)
				}
				if f == nil {
					t.Fatal("nil fragment")
				}
				for _, r := range rec.reqs {
					if b, ok := r.Body.(map[string]any); ok && r.Endpoint == "_search" && b["timeout"] != "5m" {
						t.Errorf("search %s without the shard timeout", r.Path())
					}
				}
			})
		}
	}
}

func TestIndexListNamesEachPatternOnce(t *testing.T) {
	got := indexList([]string{"logs-apm*,apm-*", "metrics-apm*,apm-*", " traces-apm*, apm-*"})
	if got != "logs-apm*,apm-*,metrics-apm*,traces-apm*" {
		t.Errorf("indexList = %q", got)
	}
}
