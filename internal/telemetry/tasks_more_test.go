package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/apmtel/apmtel/internal/es"
)

func collect(t *testing.T, task Task, answer func(int, es.Request) (string, error)) (Fragment, *recorder, []string) {
	t.Helper()
	rec := &recorder{answer: answer}
	env := testEnv(rec)
	var warnings []string
	env.Warn = func(m string) { warnings = append(warnings, m) }
	f, err := task.Collect(context.Background(), env)
	if err != nil {
		t.Fatalf("%s: %v", task.Name, err)
	}
	checkSchema(t, f)
	return f, rec, warnings
}

func buckets(n int) string {
	b := make([]string, n)
	for i := range b {
		b[i] = `{"key":{"0":"x"},"doc_count":1}`
	}
	return "[" + strings.Join(b, ",") + "]"
}

func TestAggregatedTransactions(t *testing.T) {
	t.Run("no transactions", func(t *testing.T) {
		f, rec, _ := collect(t, AggregatedTransactions(), always(`{"hits":{"hits":[]}}`))
		if d := diffJSON(t, `{}`, f); d != "" || len(rec.reqs) != 1 {
			t.Errorf("%d requests, fragment (-want +got):\n%s", len(rec.reqs), d)
		}
	})
	t.Run("paginates and computes ratios", func(t *testing.T) {
		// Variant 1 (12 sources): a full page, 3 buckets, then the empty page
		// without after_key that ends it (as Elasticsearch answers and Kibana
		// pages); variant 2 (13 sources, with country): 5 buckets, then the
		// empty page; variant 3 (11 sources): empty window. The variants run
		// concurrently, so answers go by content.
		composite := func(r es.Request) map[string]any {
			aggs, _ := r.Body.(map[string]any)["aggs"].(map[string]any)
			if aggs == nil {
				return nil
			}
			return aggs["transaction_metric_groups"].(map[string]any)["composite"].(map[string]any)
		}
		empty := func(total int) string {
			return fmt.Sprintf(`{"hits":{"total":{"value":%d}},"aggregations":{"transaction_metric_groups":{"buckets":[]}}}`, total)
		}
		answer := func(i int, r es.Request) (string, error) {
			c := composite(r)
			switch {
			case c == nil:
				return `{"hits":{"hits":[{"fields":{"@timestamp":["2026-11-26T11:00:00.000Z"]}}]}}`, nil
			case len(c["sources"].([]any)) == 12 && c["after"] == nil:
				return `{"hits":{"total":{"value":20000}},"aggregations":{"transaction_metric_groups":{"after_key":{"0":"a"},"buckets":` + buckets(compositePageSize) + `}}}`, nil
			case len(c["sources"].([]any)) == 12 && asJSON(t, c["after"]) == `{"0":"a"}`:
				return `{"hits":{"total":{"value":20000}},"aggregations":{"transaction_metric_groups":{"after_key":{"0":"b"},"buckets":` + buckets(3) + `}}}`, nil
			case len(c["sources"].([]any)) == 12:
				return empty(20000), nil
			case len(c["sources"].([]any)) == 13 && c["after"] == nil:
				return `{"hits":{"total":{"value":10}},"aggregations":{"transaction_metric_groups":{"after_key":{"0":"c"},"buckets":` + buckets(5) + `}}}`, nil
			case len(c["sources"].([]any)) == 13:
				return empty(10), nil
			}
			return empty(0), nil
		}
		f, rec, _ := collect(t, AggregatedTransactions(), answer)
		want := `{"aggregated_transactions":{"current_implementation":{"expected_metric_document_count":10003,"ratio":0.50015,"transaction_count":20000},` +
			`"no_observer_name":{"expected_metric_document_count":0,"transaction_count":0},` +
			`"with_country":{"expected_metric_document_count":5,"ratio":0.5,"transaction_count":10}}}`
		if d := diffJSON(t, want, f); d != "" {
			t.Errorf("fragment (-want +got):\n%s", d)
		}
		if len(rec.reqs) != 7 {
			t.Errorf("%d requests, want 7 (1 newest-document search, 3+2+1 pages)", len(rec.reqs))
		}
		var first, second es.Request
		for _, r := range rec.reqs {
			if c := composite(r); c != nil && len(c["sources"].([]any)) == 12 {
				if c["after"] == nil {
					first = r
				} else if asJSON(t, c["after"]) == `{"0":"a"}` {
					second = r
				}
			}
		}
		if first.Body == nil || second.Body == nil {
			t.Fatalf("current_implementation (12 sources) did not page: %d requests", len(rec.reqs))
		}
		if d := diffJSON(t, `{"0":"a"}`, composite(second)["after"]); d != "" {
			t.Errorf("second page after (-want +got):\n%s", d)
		}
		window := asJSON(t, first.Body.(map[string]any)["query"])
		// newest 11:00:00 → window [10:54, 10:55), bare epoch milliseconds as Kibana sends them
		if !strings.Contains(window, `{"@timestamp":{"gte":1795690440000,"lt":1795690500000}}`) {
			t.Errorf("window = %s", window)
		}
	})
}

func TestEnvironments(t *testing.T) {
	// The fixture of Kibana's unit test (spec §2.3.4).
	resp := `{"aggregations":{"environments":{"buckets":[{"key":"production","doc_count":10}]},
		"service_environments":{"buckets":[
		{"key":{"service.environment":"production","service.name":"opbeans-node"},"doc_count":1},
		{"key":{"service.environment":null,"service.name":"opbeans-node"},"doc_count":1},
		{"key":{"service.environment":"production","service.name":"opbeans-java"},"doc_count":1},
		{"key":{"service.environment":null,"service.name":"opbeans-rum"},"doc_count":1}]}}}`
	f, _, _ := collect(t, Environments(), always(resp))
	want := `{"environments":{"services_with_multiple_environments":1,"services_without_environment":2,"top_environments":["production"]}}`
	if d := diffJSON(t, want, f); d != "" {
		t.Errorf("fragment (-want +got):\n%s", d)
	}
	f, _, _ = collect(t, Environments(), always(`{"hits":{"hits":[]}}`))
	if d := diffJSON(t, `{"environments":{"services_with_multiple_environments":0,"services_without_environment":0,"top_environments":[]}}`, f); d != "" {
		t.Errorf("missing aggregations (-want +got):\n%s", d)
	}
	// Pages past 1000 pairs (Kibana stops there).
	full := make([]string, 1000)
	for i := range full {
		full[i] = fmt.Sprintf(`{"key":{"service.environment":"e%d","service.name":"s"},"doc_count":1}`, i)
	}
	pages := []string{
		`{"aggregations":{"environments":{"buckets":[]},"service_environments":{"after_key":{"x":1},"buckets":[` + strings.Join(full, ",") + `]}}}`,
		`{"aggregations":{"service_environments":{"buckets":[{"key":{"service.environment":null,"service.name":"t"},"doc_count":1}]}}}`,
	}
	f, rec, _ := collect(t, Environments(), func(i int, _ es.Request) (string, error) { return pages[i], nil })
	if d := diffJSON(t, "1", f["environments"].(map[string]any)["services_without_environment"]); len(rec.reqs) != 2 || d != "" {
		t.Errorf("pagination: %d requests, services_without_environment (-want +got):\n%s", len(rec.reqs), d)
	}
}

func TestGlobalLabels(t *testing.T) {
	tests := []struct{ resp, want string }{
		{`{"indices":["a"],"fields":{"labels":{"object":{}},"labels.team":{"keyword":{}},"labels.env":{"keyword":{}}}}`, "2"},
		{`{"indices":[],"fields":{}}`, "0"},
		{`{"fields":{"labels.a":{}}}`, "1"},
	}
	for _, tc := range tests {
		f, rec, _ := collect(t, GlobalLabels(), always(tc.resp))
		if d := diffJSON(t, tc.want, f["counts"].(map[string]any)["global_labels"].(map[string]any)["1d"]); d != "" {
			t.Errorf("%s: counts.global_labels.1d (-want +got):\n%s", tc.resp, d)
		}
		if p := rec.reqs[0].Path(); !strings.Contains(p, "expand_wildcards=all") || !strings.Contains(p, "fields=labels.%2A") {
			t.Errorf("path %s", p)
		}
	}
}

func TestServices(t *testing.T) {
	answer := func(i int, r es.Request) (string, error) {
		q := asJSON(t, r.Body.(map[string]any)["query"])
		switch {
		case strings.Contains(q, `"agent.name":"java"`):
			return `{"aggregations":{"services":{"value":3}}}`, nil
		case strings.Contains(q, `"prefix":{"agent.name":"otlp"}`):
			return `{"aggregations":{"agent_name":{"buckets":[{"key":"otlp/java","doc_count":4,"services":{"value":2}}]}}}`, nil
		case strings.Contains(q, `"exists"`):
			return `{"hits":{"total":{"value":1}}}`, nil
		}
		return `{"aggregations":{"services":{"value":0}}}`, nil
	}
	f, rec, _ := collect(t, Services(), answer)
	per := f["services_per_agent"].(map[string]any)
	if len(per) != 19 || per["opentelemetry/java/opentelemetry-java-instrumentation"] != int64(0) || per["java"] != int64(3) || per["otlp/java"] != int64(2) || per["iOS/swift"] != int64(0) {
		t.Errorf("services_per_agent = %s", asJSON(t, per))
	}
	if f["has_any_services"] != true || f["has_any_services_per_official_agent"] != true {
		t.Errorf("flags %v %v", f["has_any_services"], f["has_any_services_per_official_agent"])
	}
	if len(rec.reqs) != 21 { // 18 distinct agents + 2 OTel prefixes + 1 exists (Kibana: 25)
		t.Errorf("%d requests", len(rec.reqs))
	}
	f, _, _ = collect(t, Services(), always(`{}`))
	if f["has_any_services"] != false || f["has_any_services_per_official_agent"] != false {
		t.Errorf("empty: %s", asJSON(t, f))
	}
}

func TestGroupings(t *testing.T) {
	// The five searches run concurrently: answers go by content.
	answer := func(i int, r es.Request) (string, error) {
		b := asJSON(t, r.Body)
		switch {
		case strings.Contains(b, `"error_groups"`):
			return `{"aggregations":{"top_service":{"buckets":[{"key":"a","doc_count":9,"error_groups":{"value":4}}]}}}`, nil
		case strings.Contains(b, `"transaction_groups"`):
			return `{"aggregations":{"top_service":{"buckets":[{"key":"b","doc_count":9,"transaction_groups":{"value":7}}]}}}`, nil
		case strings.Contains(b, `"must_not"`):
			return `{"hits":{"total":{"value":11}}}`, nil
		case strings.Contains(b, `"service_environments"`):
			return `{"aggregations":{"service_name":{"value":3},"service_environments":{"value":2}}}`, nil
		case strings.Contains(b, `"span_destination_service_resource"`):
			return `{"aggregations":{"span_destination_service_resource":{"value":5}}}`, nil
		}
		t.Errorf("unexpected request %s", b)
		return `{}`, nil
	}
	f, rec, _ := collect(t, Groupings(), answer)
	want := `{"counts":{"environments":{"1d":2},"max_error_groups_per_service":{"1d":4},"max_transaction_groups_per_service":{"1d":7},"services":{"1d":3},"span_destination_service_resource":{"1d":5},"traces":{"1d":11}}}`
	if d := diffJSON(t, want, f); d != "" {
		t.Errorf("fragment (-want +got):\n%s", d)
	}
	for _, r := range rec.reqs {
		if strings.Contains(asJSON(t, r.Body), `"span_destination_service_resource"`) && !strings.HasPrefix(r.Path(), "/traces-apm*,apm-*,traces-*.otel-*/") {
			t.Errorf("span query path %s", r.Path())
		}
	}
	f, _, _ = collect(t, Groupings(), always(`{"aggregations":{"top_service":{"buckets":[]}}}`))
	if !strings.Contains(asJSON(t, f), `"max_error_groups_per_service":{"1d":0}`) {
		t.Errorf("empty: %s", asJSON(t, f))
	}
}

// The response of GET _ml/anomaly_detectors/<ids> as documented in
// Elasticsearch's "Get anomaly detection jobs API" reference (trimmed): the
// search engine the tests run on (OpenSearch) has no _ml API.
const esDocMLJobsResponse = `{"count":1,"jobs":[{"job_id":"high_sum_total_sales","job_type":"anomaly_detector","job_version":"8.4.0","create_time":1655852735889,"analysis_config":{"bucket_span":"1h"},"model_snapshot_retention_days":10,"results_index_name":"shared"}]}`

func TestIntegrations(t *testing.T) {
	f, rec, _ := collect(t, Integrations(), always(esDocMLJobsResponse))
	if d := diffJSON(t, `{"integrations":{"ml":{"all_jobs_count":1}}}`, f); d != "" {
		t.Errorf("fragment (-want +got):\n%s", d)
	}
	if p := rec.reqs[0].Path(); p != "/_ml/anomaly_detectors/apm-*,*-high_mean_response_time" {
		t.Errorf("path %s", p)
	}
	for _, e := range []*es.Error{{Status: 404, Type: "resource_not_found_exception"}, {Status: 400, Reason: "no handler found for uri [/_ml/…]"}} {
		f, _, warnings := collect(t, Integrations(), func(int, es.Request) (string, error) { return "", e })
		if d := diffJSON(t, `{"integrations":{"ml":{"all_jobs_count":0}}}`, f); d != "" || len(warnings) != 1 {
			t.Errorf("%v: warnings %v, fragment (-want +got):\n%s", e, warnings, d)
		}
	}
	_, err := Integrations().Collect(context.Background(), testEnv(&recorder{answer: func(int, es.Request) (string, error) {
		return "", &es.Error{Status: 403, Type: "security_exception"}
	}}))
	if err == nil {
		t.Error("403 must fail the task")
	}
}

func TestAgents(t *testing.T) {
	resp := `{"aggregations":{
		"agent.activation_method":{"buckets":[{"key":"javaagent-flag","doc_count":5}]},
		"agent.version":{"buckets":[{"key":"1.38.0","doc_count":5},{"key":"1.37.0","doc_count":1}]},
		"service.framework.name":{"buckets":[
			{"key":"Spring","doc_count":8,"service.framework.version":{"buckets":[{"key":"5","doc_count":3},{"key":"6","doc_count":3}]}},
			{"key":"JAX-RS","doc_count":4,"service.framework.version":{"buckets":[{"key":"2","doc_count":3},{"key":"1","doc_count":1}]}}]},
		"service.framework.version":{"buckets":[{"key":"5","doc_count":3},{"key":"6","doc_count":3},{"key":"2","doc_count":3},{"key":"1","doc_count":1}]},
		"service.language.name":{"buckets":[]},"service.language.version":{"buckets":[]},
		"service.runtime.name":{"buckets":[]},"service.runtime.version":{"buckets":[]}}}`
	f, _, _ := collect(t, Agents(), func(i int, r es.Request) (string, error) {
		if strings.Contains(asJSON(t, r.Body), `"agent.name":"java"`) {
			return resp, nil
		}
		return `{"aggregations":{}}`, nil
	})
	java := f["agents"].(map[string]any)["java"].(map[string]any)
	// Ties (three buckets of 3) end in reverse order of appearance: 2, 6, 5.
	want := `{"agent":{"activation_method":["javaagent-flag"],"version":["1.38.0","1.37.0"]},"service":{"framework":{"composite":["JAX-RS/2","Spring/6","Spring/5"],"name":["Spring","JAX-RS"],"version":["5","6","2"]},"language":{"composite":[],"name":[],"version":[]},"runtime":{"composite":[],"name":[],"version":[]}}}`
	if d := diffJSON(t, want, java); d != "" {
		t.Errorf("java (-want +got):\n%s", d)
	}
	if n := len(f["agents"].(map[string]any)); n != 18 {
		t.Errorf("%d agents, want the 18 distinct names of AGENT_NAMES_WITHOUT_OTEL", n)
	}
	f, _, _ = collect(t, Agents(), always(`{"hits":{"hits":[]}}`))
	if n := len(f["agents"].(map[string]any)); n != 0 {
		t.Errorf("missing aggregations: %d agents", n)
	}
}

func TestIndicesStats(t *testing.T) {
	answer := func(i int, r es.Request) (string, error) {
		switch {
		case r.Endpoint == "_stats" && strings.Contains(r.Path(), "metrics-apm.transaction.1m-"):
			return `{"_shards":{"total":2},"_all":{"primaries":{"docs":{"count":6},"store":{"size_in_bytes":100}}}}`, nil
		case r.Endpoint == "_stats" && strings.Contains(r.Path(), ".apm-agent-configuration"):
			return `{"_shards":{"total":9},"_all":{"total":{"docs":{"count":90},"store":{"size_in_bytes":900}}}}`, nil
		case r.Endpoint == "_stats":
			return `{"_shards":{"total":0},"_all":{}}`, nil
		}
		// value_count 6 against doc_count 1080: the real document count wins (spec §2.3.13).
		return `{"aggregations":{"metricsets":{"buckets":[
			{"key":"transaction","doc_count":1080,"rollup_interval":{"buckets":[{"key":"1m","doc_count":1080,"metrics_value_count":{"value":6}},{"key":"5m","doc_count":1,"metrics_value_count":{"value":1}}]}},
			{"key":"app","doc_count":42,"rollup_interval":{"buckets":[]}}]}}}`, nil
	}
	f, rec, warnings := collect(t, IndicesStats(), answer)
	ind := f["indices"].(map[string]any)
	ms := ind["metric"].(map[string]any)["metricset"].(map[string]any)
	if len(ms) != 16 {
		t.Errorf("%d metricset keys, want 16", len(ms))
	}
	if d := diffJSON(t, `{"1d":{"doc_count":6},"all":{"total":{"docs":{"count":6},"shards":2,"store":{"size_in_bytes":100}}}}`, ms["transaction-1m"]); d != "" {
		t.Errorf("transaction-1m (-want +got):\n%s", d)
	}
	if d := diffJSON(t, `{"doc_count":42}`, ms["app"].(map[string]any)["1d"]); d != "" {
		t.Errorf("app (-want +got):\n%s", d)
	}
	if d := diffJSON(t, `{"all":{"total":{"docs":{"count":90},"store":{"size_in_bytes":900}}},"shards":{"total":9}}`,
		map[string]any{"all": ind["all"], "shards": ind["shards"]}); d != "" {
		t.Errorf("indices.all and shards (-want +got):\n%s", d)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], `"5m"`) {
		t.Errorf("warnings %v", warnings)
	}
	if len(rec.reqs) != 20 {
		t.Errorf("%d requests, want 20", len(rec.reqs))
	}
}

func TestCardinality(t *testing.T) {
	isRUM := func(r es.Request) bool { return strings.Contains(asJSON(t, r.Body), `"agent.name":[`) }
	answer := func(i int, r es.Request) (string, error) {
		if !isRUM(r) {
			return `{"aggregations":{"transaction.name":{"value":12},"user_agent.original":{"value":3}}}`, nil
		}
		return `{"aggregations":{"client.geo.country_iso_code":{"value":4},"transaction.name":{"value":2}}}`, nil
	}
	f, rec, _ := collect(t, Cardinality(), answer)
	want := `{"cardinality":{"client":{"geo":{"country_iso_code":{"rum":{"1d":4}}}},"transaction":{"name":{"all_agents":{"1d":12},"rum":{"1d":2}}},"user_agent":{"original":{"all_agents":{"1d":3}}}}}`
	if d := diffJSON(t, want, f); d != "" {
		t.Errorf("fragment (-want +got):\n%s", d)
	}
	rum := rec.reqs[0]
	if !isRUM(rum) {
		rum = rec.reqs[1]
	}
	if !strings.Contains(asJSON(t, rum.Body), `"terms":{"agent.name":["js-base","rum-js","opentelemetry/webjs","otlp/webjs"]}`) {
		t.Errorf("rum query %s", asJSON(t, rum.Body))
	}
	f, _, _ = collect(t, Cardinality(), always(`{}`))
	if d := diffJSON(t, `{}`, f); d != "" {
		t.Errorf("missing values must be left out (-want +got):\n%s", d)
	}
}

func TestTopTraces(t *testing.T) {
	f, _, _ := collect(t, TopTraces(), always(`{"aggregations":{"top_traces":{"buckets":[]},"max":{"value":42},"median":{"values":{"50.0":7.5}}}}`))
	if d := diffJSON(t, `{"top_traces":{"max":42,"median":7}}`, f); d != "" {
		t.Errorf("fragment (-want +got):\n%s", d)
	}
	f, _, _ = collect(t, TopTraces(), always(`{"aggregations":{"max":{"value":null},"median":{"values":{"50.0":null}}}}`))
	if d := diffJSON(t, `{"top_traces":{"max":0,"median":0}}`, f); d != "" {
		t.Errorf("empty (-want +got):\n%s", d)
	}
}

func TestServiceGroupsAndDashboards(t *testing.T) {
	resp := `{"hits":{"total":{"value":612},"hits":[
		{"_id":"a","_source":{"apm-service-group":{"kuery":"service.name: a or agent.name: java"}}},
		{"_id":"b","_source":{"apm-service-group":{"kuery":"service.name: (x or y) and not labels.team: z"}}},
		{"_id":"c","_source":{"apm-service-group":{"kuery":"service.name: (broken"}}},
		{"_id":"d","_source":{"apm-service-group":{}}}]}}`
	f, rec, warnings := collect(t, ServiceGroups(), always(resp))
	if d := diffJSON(t, `{"service_groups":{"kuery_fields":["service.name","agent.name","labels.team"],"total":612}}`, f); d != "" {
		t.Errorf("fragment (-want +got):\n%s", d)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "apm-service-group c") {
		t.Errorf("warnings %v", warnings)
	}
	body := asJSON(t, rec.reqs[0].Body)
	if !strings.Contains(body, `"size":500`) || !strings.Contains(body, `"term":{"type":"apm-service-group"}`) || !strings.Contains(rec.reqs[0].Path(), "expand_wildcards=open%2Chidden") {
		t.Errorf("request %s %s", rec.reqs[0].Path(), body)
	}
	f, _, _ = collect(t, CustomDashboards(), always(`{"hits":{"total":{"value":0},"hits":[]}}`))
	if d := diffJSON(t, `{"custom_dashboards":{"kuery_fields":[],"total":0}}`, f); d != "" {
		t.Errorf("empty (-want +got):\n%s", d)
	}
}

// The top_metrics answer has the shape documented in Elasticsearch's "Top
// metrics aggregation" reference ("top": [{"sort": [...], "metrics": {...}}]);
// Neither test engine has top_metrics, so this shape is only tested here.
const esDocPerServiceResponse = `{"timed_out":false,"aggregations":{"service_names":{"buckets":[
	{"key":"opbeans-java","doc_count":10,"environments":{"buckets":[
		{"key":"production","doc_count":10,
		 "instances":{"value":2},"transaction_types":{"value":3},
		 "top_metrics":{"top":[{"sort":[0.0],"metrics":{"agent.activation_method":"javaagent-flag","agent.name":"java","agent.version":"1.38.0",
			"service.language.name":"Java","service.language.version":"17","service.framework.name":null,"service.framework.version":null,
			"service.runtime.name":"Java","service.runtime.version":"17.0.2","kubernetes.pod.name":null,"container.id":"c1"}}]},
		 "cloud.region":{"buckets":[{"key":"us-east-1","doc_count":10}]},"cloud.provider":{"buckets":[{"key":"aws","doc_count":10}]},
		 "cloud.availability_zone":{"buckets":[]},"faas.trigger.type":{"buckets":[]}}]}}]}}}`

func TestPerService(t *testing.T) {
	f, _, _ := collect(t, PerService(), always(esDocPerServiceResponse))
	items := f["per_service"].([]any)
	if len(items) != 1 {
		t.Fatalf("%d items", len(items))
	}
	want := `{"agent":{"activation_method":"javaagent-flag","name":"java","version":"1.38.0"},"cloud":{"availability_zones":[],"providers":["aws"],"regions":["us-east-1"]},` +
		`"container":{"id":"c1"},"faas":{"trigger":{"type":[]}},"kubernetes":{"pod":{"name":null}},"num_service_nodes":2,"num_transaction_types":3,` +
		`"service":{"framework":{"name":null,"version":null},"language":{"name":"Java","version":"17"},"runtime":{"name":"Java","version":"17.0.2"}},` +
		`"service_id":"` + sha256hexOf("production") + "~" + sha256hexOf("opbeans-java") + `","timed_out":false}`
	if d := diffJSON(t, want, items[0]); d != "" {
		t.Errorf("first service (-want +got):\n%s", d)
	}
	// Known digests (python3 hashlib), computed outside the code under test.
	if id := ServiceID("opbeans-java", ""); !strings.HasPrefix(id, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855~") {
		t.Errorf("id %s", id)
	}
}

func sha256hexOf(s string) string {
	known := map[string]string{
		"production":   "ab8e18ef4ebebeddc0b3152ce9c9006e14fc05242e3fc9ce32246ea6a9543074",
		"opbeans-java": "085f867041ab1d6f52e149c4e42e336ab4a08fb3d5fb7c4ed5970e1060a4ab63",
	}
	return known[s]
}

func TestPerServiceFallsBackToTopHits(t *testing.T) {
	topHits := `{"aggregations":{"service_names":{"buckets":[{"key":"s","environments":{"buckets":[{"key":"e","instances":{"value":1},
		"top_metrics":{"hits":{"hits":[{"fields":{"agent.name":["go"],"container.id":["c9"]}}]}}}]}}]}}}`
	f, rec, warnings := collect(t, PerService(), func(i int, r es.Request) (string, error) {
		if strings.Contains(asJSON(t, r.Body), `"top_metrics":{"top_metrics"`) {
			return "", &es.Error{Status: 400, Type: "x_content_parse_exception", Reason: "Unknown aggregation type [top_metrics]"}
		}
		return topHits, nil
	})
	item := f["per_service"].([]any)[0].(map[string]any)
	if d := diffJSON(t, `{"agent":{"activation_method":null,"name":"go","version":null},"container":{"id":"c9"}}`,
		map[string]any{"agent": item["agent"], "container": item["container"]}); d != "" {
		t.Errorf("item's agent and container (-want +got):\n%s", d)
	}
	if len(rec.reqs) != 2 || len(warnings) != 1 {
		t.Errorf("%d requests, warnings %v", len(rec.reqs), warnings)
	}
	// Other 400s are not mistaken for a missing top_metrics.
	_, err := PerService().Collect(context.Background(), testEnv(&recorder{answer: func(int, es.Request) (string, error) {
		return "", &es.Error{Status: 400, Type: "search_phase_execution_exception", Reason: "bad"}
	}}))
	var e *es.Error
	if !errors.As(err, &e) {
		t.Errorf("want the 400, got %v", err)
	}
}

func TestPerAgentConfigSettings(t *testing.T) {
	page := `{"_scroll_id":"s1","hits":{"total":{"value":6},"hits":[
		{"_id":"1","_source":{"service":{"name":"a"},"agent_name":"java","settings":{"capture_body":"all","my_custom_key":"x","transaction_sample_rate":"0.1"}}},
		{"_id":"2","_source":{"service":{},"settings":{"transaction_sample_rate":"0.5","transaction_max_spans":"10","capture_body":"off"}}},
		{"_id":"3","_source":{"agent_name":"opentelemetry/java/elastic","error":"could not apply","settings":{"logging_level":"debug","transaction_sample_rate":"1"}}},
		{"_id":"4","_source":{"agent_name":"php","error":"","settings":{"capture_body":"all","log_level":"debug"}}},
		{"_id":"5","_source":{"agent_name":"go"}},
		{"_id":"6","_source":{"agent_name":"otlp/java","settings":{}}}]}}`
	f, rec, warnings := collect(t, PerAgentConfigSettings(), func(i int, r es.Request) (string, error) {
		if r.Method == "DELETE" {
			return `{"succeeded":true}`, nil
		}
		return page, nil
	})
	want := `{"per_agent_config_settings":[` +
		`{"advanced_settings":["my_custom_key"],"agent_name":"java","has_error":false,"settings":["capture_body","transaction_sample_rate"]},` +
		`{"advanced_settings":["capture_body"],"has_error":false,"settings":["transaction_sample_rate","transaction_max_spans"]},` +
		`{"advanced_settings":["transaction_sample_rate"],"agent_name":"opentelemetry/java/elastic","has_error":true,"settings":["logging_level"]},` +
		`{"advanced_settings":["capture_body"],"agent_name":"php","has_error":false,"settings":["log_level"]},` +
		`{"advanced_settings":[],"agent_name":"otlp/java","has_error":false,"settings":[]}]}`
	if d := diffJSON(t, want, f); d != "" {
		t.Errorf("fragment (-want +got):\n%s", d)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "1 agent configuration document(s) without settings") {
		t.Errorf("warnings %v", warnings)
	}
	if last := rec.reqs[len(rec.reqs)-1]; last.Method != "DELETE" || last.Endpoint != "_search/scroll" {
		t.Errorf("scroll not cleared: %+v", last)
	}
	// A missing index (ignore_unavailable) is an empty list.
	f, _, _ = collect(t, PerAgentConfigSettings(), always(`{"hits":{"total":{"value":0},"hits":[]}}`))
	if d := diffJSON(t, `{"per_agent_config_settings":[]}`, f); d != "" {
		t.Errorf("missing index (-want +got):\n%s", d)
	}
}

func TestPerAgentConfigSettingsPagesPast1000(t *testing.T) {
	hits := make([]string, agentConfigPageSize)
	for i := range hits {
		hits[i] = fmt.Sprintf(`{"_id":"%d","_source":{"agent_name":"go","settings":{"log_level":"info"}}}`, i)
	}
	pages := []string{
		`{"_scroll_id":"s1","hits":{"hits":[` + strings.Join(hits, ",") + `]}}`,
		`{"_scroll_id":"s2","hits":{"hits":[` + hits[0] + `]}}`,
		`{"succeeded":true}`,
	}
	f, rec, _ := collect(t, PerAgentConfigSettings(), func(i int, r es.Request) (string, error) { return pages[i], nil })
	if n := len(f["per_agent_config_settings"].([]any)); n != agentConfigPageSize+1 {
		t.Errorf("%d items", n)
	}
	if rec.reqs[1].Endpoint != "_search/scroll" || diffJSON(t, `{"scroll_id":"s2"}`, rec.reqs[2].Body) != "" {
		t.Errorf("scroll requests %+v", rec.reqs)
	}
}

func TestKnownSettingKeysAllAgents(t *testing.T) {
	keys := knownSettingKeys("")
	var got []string
	for k := range keys {
		got = append(got, k)
	}
	if len(got) != 2 || !keys["transaction_max_spans"] || !keys["transaction_sample_rate"] {
		t.Errorf("All agents recognise %v, want transaction_max_spans and transaction_sample_rate", got)
	}
	if !knownSettingKeys("iOS/swift")["session_sample_rate"] || knownSettingKeys("ios/swift")["session_sample_rate"] {
		t.Error("agent matching must be exact and case-sensitive")
	}
}

var _ = json.Marshal

// has_error is Kibana's !!error: JavaScript truthiness of whatever the
// document holds, so a non-string error neither fails the task nor reads false.
func TestPerAgentConfigSettingsErrorTruthiness(t *testing.T) {
	for _, tc := range []struct {
		error string
		want  bool
	}{
		{`absent`, false}, {`null`, false}, {`""`, false}, {`false`, false}, {`0`, false}, {`0.0`, false},
		{`"x"`, true}, {`true`, true}, {`1`, true}, {`-2.5`, true}, {`{}`, true}, {`[]`, true}, {`{"message":"bad"}`, true}, {`"false"`, true},
	} {
		src := `{"agent_name":"go","settings":{"capture_body":"all"}}`
		if tc.error != "absent" {
			src = `{"agent_name":"go","error":` + tc.error + `,"settings":{"capture_body":"all"}}`
		}
		item, ok, err := agentConfigItem(json.RawMessage(src))
		if err != nil || !ok || item["has_error"] != tc.want {
			t.Errorf("error %s: has_error %v (ok %v, err %v), want %v", tc.error, item["has_error"], ok, err, tc.want)
		}
	}
}

// Setting names come in Kibana's Object.keys order: array-index keys first,
// ascending, then the rest as written; a repeated key once, where it first was.
func TestPerAgentConfigSettingsKeyOrder(t *testing.T) {
	for _, tc := range []struct{ settings, settingsWant, advancedWant string }{
		{`{"capture_body":"all","10":1,"b":1,"2":1,"0":1,"a":1}`, `["capture_body"]`, `["0","2","10","b","a"]`},
		{`{"z":1,"01":1,"-1":1,"4294967295":1,"4294967294":1,"1.5":1}`, `[]`, `["4294967294","z","01","-1","4294967295","1.5"]`},
		{`{"x":1,"capture_body":"all","x":2}`, `["capture_body"]`, `["x"]`},
	} {
		item, ok, err := agentConfigItem(json.RawMessage(`{"agent_name":"go","settings":` + tc.settings + `}`))
		if err != nil || !ok {
			t.Fatalf("%s: %v", tc.settings, err)
		}
		if s, a := mustMarshal(item["settings"]), mustMarshal(item["advanced_settings"]); s != tc.settingsWant || a != tc.advancedWant {
			t.Errorf("%s: settings %s advanced %s, want %s %s", tc.settings, s, a, tc.settingsWant, tc.advancedWant)
		}
	}
}

func mustMarshal(v any) string { b, _ := json.Marshal(v); return string(b) }
