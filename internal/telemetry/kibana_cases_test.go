package telemetry

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/agentnames"
	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/schema"
)

// Kibana's own unit tests of the tasks (collect_data_telemetry/tasks.test.ts
// and its __snapshots__/tasks.test.ts.snap), re-expressed: each mocked
// client answer is written as the Elasticsearch response it stands for,
// each expected executor output is the wanted fragment. Where a mock is a
// shape the real client never returns, the case's note says what the
// fixture uses instead (docs/parity.md lists the same). Every case's output
// is also checked against the payload schema, so the schema and the tasks
// cannot drift apart without a failing unit test.
//
// Tasks Kibana does not test are covered by apmtel fixtures in the same
// table (source "apmtel"), so every one of the 19 tasks is validated.

// kibanaCase is one test case.
type kibanaCase struct {
	source string // the Kibana test ("describe › it"), or "apmtel: …"
	task   Task
	now    time.Time // zero: testNow
	answer func(i int, r es.Request, body map[string]any) string
	want   string
	note   string // where the fixture deviates from Kibana's mock, and why
	check  func(t *testing.T, reqs []es.Request)
}

// at walks a decoded JSON value by keys and indices; nil when absent.
func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

// zeroShards is Elasticsearch's answer when the index patterns match no
// index (allow_no_indices): no aggregations at all. It stands for Kibana's
// `{}` mocks.
const zeroShards = `{"took":0,"timed_out":false,"_shards":{"total":0,"successful":0,"skipped":0,"failed":0},"hits":{"total":{"value":0,"relation":"eq"},"max_score":0,"hits":[]}}`

// agentDataMock is the aggregation set of Kibana's agents test (one bucket
// each), with the doc_count Elasticsearch always sends.
const agentDataMock = `"agent.activation_method":{"buckets":[{"key":"k8s-attach","doc_count":1}]},
	"agent.version":{"buckets":[{"key":"1.38.0","doc_count":1}]},
	"service.framework.name":{"buckets":[{"key":"Spring Web MVC","doc_count":1,"service.framework.version":{"buckets":[{"key":"1.10.1","doc_count":1}]}}]},
	"service.framework.version":{"buckets":[{"key":"6.1.11","doc_count":111}]},
	"service.language.name":{"buckets":[{"key":"Java","doc_count":1,"service.language.version":{"buckets":[{"key":"17.0.12","doc_count":1}]}}]},
	"service.language.version":{"buckets":[{"key":"17.0.12","doc_count":112}]},
	"service.runtime.name":{"buckets":[{"key":"Java","doc_count":1,"service.runtime.version":{"buckets":[{"key":"17.0.12","doc_count":113}]}}]},
	"service.runtime.version":{"buckets":[{"key":"17.0.12","doc_count":113}]}`

const emptyAgentAggs = `"agent.activation_method":{"buckets":[]},"agent.version":{"buckets":[]},
	"service.framework.name":{"buckets":[]},"service.framework.version":{"buckets":[]},
	"service.language.name":{"buckets":[]},"service.language.version":{"buckets":[]},
	"service.runtime.name":{"buckets":[]},"service.runtime.version":{"buckets":[]}`

// The six OpenTelemetry names the mocks answer through the prefix queries.
var kibanaTestOTelKeys = []string{"otlp", "otlp/java", "otlp/java/elastic", "opentelemetry", "opentelemetry/java", "opentelemetry/java/elastic"}

// agentsSnapshot is the snapshot "agents should return agent data per agent
// name": java and the six OTel names with the mock's data, every other name
// of the exact-term loop with empty lists. The snapshot predates the EDOT and
// OTel names in AGENT_NAMES; with Kibana's current lists the loop also emits
// them (empty), so they are part of the expectation.
func agentsSnapshot() string {
	full := `{"agent":{"activation_method":["k8s-attach"],"version":["1.38.0"]},"service":{` +
		`"framework":{"composite":["Spring Web MVC/1.10.1"],"name":["Spring Web MVC"],"version":["6.1.11"]},` +
		`"language":{"composite":["Java/17.0.12"],"name":["Java"],"version":["17.0.12"]},` +
		`"runtime":{"composite":["Java/17.0.12"],"name":["Java"],"version":["17.0.12"]}}}`
	empty := `{"agent":{"activation_method":[],"version":[]},"service":{` +
		`"framework":{"composite":[],"name":[],"version":[]},"language":{"composite":[],"name":[],"version":[]},"runtime":{"composite":[],"name":[],"version":[]}}}`
	out := map[string]json.RawMessage{}
	for _, n := range agentnames.WithoutOTel {
		out[n] = json.RawMessage(empty)
	}
	for _, n := range append([]string{"java"}, kibanaTestOTelKeys...) {
		out[n] = json.RawMessage(full)
	}
	b, _ := json.Marshal(map[string]any{"agents": out})
	return string(b)
}

// servicesSnapshot is the snapshot "services should return services per
// agent name", plus the EDOT and OTel names at 0 (see agentsSnapshot).
func servicesSnapshot() string {
	per := map[string]int{}
	for _, n := range agentnames.WithoutOTel {
		per[n] = 0
	}
	per["java"] = 10
	for i, n := range kibanaTestOTelKeys {
		per[n] = i + 1
	}
	b, _ := json.Marshal(map[string]any{"has_any_services": true, "has_any_services_per_official_agent": true, "services_per_agent": per})
	return string(b)
}

// indicesStatsSnapshot renders the snapshot of indices_stats for one _stats
// answer (shards, primaries docs/size, total docs/size) and the last-day
// document count of each metricset.
func indicesStatsSnapshot(shards, pDocs, pSize, tDocs, tSize int, day map[string]int) string {
	ms := map[string]any{}
	for _, m := range []string{"service_destination", "service_transaction", "service_summary", "transaction", "span_breakdown"} {
		for _, iv := range []string{"1m", "10m", "60m"} {
			ms[m+"-"+iv] = nil
		}
	}
	ms["app"] = nil
	for k := range ms {
		ms[k] = map[string]any{
			"1d":  map[string]int{"doc_count": day[k]},
			"all": map[string]any{"total": map[string]any{"docs": map[string]int{"count": pDocs}, "shards": shards, "store": map[string]int{"size_in_bytes": pSize}}},
		}
	}
	totals := map[string]any{"docs": map[string]int{"count": tDocs}, "store": map[string]int{"size_in_bytes": tSize}}
	b, _ := json.Marshal(map[string]any{"indices": map[string]any{
		"all":    map[string]any{"total": totals},
		"shards": map[string]int{"total": shards},
		"metric": map[string]any{"all": map[string]any{"total": totals}, "shards": map[string]int{"total": shards}, "metricset": ms},
		"traces": map[string]any{"all": map[string]any{"total": totals}, "shards": map[string]int{"total": shards}},
	}})
	return string(b)
}

func stats(shards, pDocs, pSize, tDocs, tSize int) string {
	return fmt.Sprintf(`{"_shards":{"total":%d,"successful":%d,"failed":0},"_all":{"primaries":{"docs":{"count":%d},"store":{"size_in_bytes":%d,"total_data_set_size_in_bytes":%d}},"total":{"docs":{"count":%d},"store":{"size_in_bytes":%d}}}}`,
		shards, shards, pDocs, pSize, pSize, tDocs, tSize)
}

func compositePage(n int, afterKey bool, total int) string {
	b := make([]string, n)
	for i := range b {
		b[i] = fmt.Sprintf(`{"key":{"0":"t%d"},"doc_count":4}`, i)
	}
	after := ""
	if afterKey {
		after = `"after_key":{"0":"t999"},`
	}
	return fmt.Sprintf(`{"hits":{"total":{"value":%d,"relation":"eq"},"hits":[]},"aggregations":{"transaction_metric_groups":{%s"buckets":[%s]}}}`, total, after, strings.Join(b, ","))
}

func savedObjects(soType string, objs ...string) string {
	hits := make([]string, len(objs))
	for i, o := range objs {
		// _source holds only <type>.kuery: the search filters the source to it.
		hits[i] = fmt.Sprintf(`{"_index":".kibana_9.2.0_001","_id":"%s:0b6157f0-%d","_source":{%s}}`, soType, i, o)
	}
	return fmt.Sprintf(`{"hits":{"total":{"value":%d,"relation":"eq"},"hits":[%s]}}`, len(objs), strings.Join(hits, ","))
}

func kibanaCases() []kibanaCase {
	// Kibana mocks Date.prototype.getTime to 1594330792957 in processor_events,
	// so every age is 0: the oldest document is exactly "now".
	peNow := time.UnixMilli(1594330792957).UTC()
	return []kibanaCase{
		{source: "environments › returns environment information", task: Environments(),
			answer: func(int, es.Request, map[string]any) string {
				return `{"aggregations":{"environments":{"buckets":[{"key":"production","doc_count":3},{"key":"testing","doc_count":1}]},
					"service_environments":{"after_key":{"service.environment":null,"service.name":"opbeans-rum"},"buckets":[
					{"key":{"service.environment":"production","service.name":"opbeans-node"},"doc_count":1},
					{"key":{"service.environment":null,"service.name":"opbeans-node"},"doc_count":1},
					{"key":{"service.environment":"production","service.name":"opbeans-java"},"doc_count":1},
					{"key":{"service.environment":null,"service.name":"opbeans-rum"},"doc_count":1}]}}}`
			},
			want: `{"environments":{"services_with_multiple_environments":1,"services_without_environment":2,"top_environments":["production","testing"]}}`},
		{source: "aggregated_transactions › without transactions › returns an empty result", task: AggregatedTransactions(),
			answer: func(int, es.Request, map[string]any) string {
				return `{"hits":{"total":{"value":0,"relation":"eq"},"hits":[]}}`
			},
			want: `{}`},
		{source: "aggregated_transactions › returns aggregated transaction counts", task: AggregatedTransactions(),
			note: "Kibana's first mock puts total beside hits (unread either way) and pages with an empty after_key {} and a sparse Array(1000); " +
				"the fixture sends 1000 real buckets with an after_key, then 250 without one, as Elasticsearch would",
			answer: func(i int, _ es.Request, body map[string]any) string {
				if i == 0 {
					return `{"hits":{"hits":[{"_id":"a","fields":{"@timestamp":["2026-11-26T11:59:00.000Z"]}}]}}`
				}
				if at(body, "aggs", "transaction_metric_groups", "composite", "after") != nil {
					return compositePage(250, false, 5000)
				}
				return compositePage(1000, true, 5000)
			},
			want: `{"aggregated_transactions":{` +
				`"current_implementation":{"expected_metric_document_count":1250,"ratio":0.25,"transaction_count":5000},` +
				`"no_observer_name":{"expected_metric_document_count":1250,"ratio":0.25,"transaction_count":5000},` +
				`"with_country":{"expected_metric_document_count":1250,"ratio":0.25,"transaction_count":5000}}}`},
		{source: "global_labels › returns count of global labels when present", task: GlobalLabels(),
			answer: func(int, es.Request, map[string]any) string {
				return `{"indices":[".ds-metrics-apm.service_destination.1m-default-2023.09.26-000005",".ds-metrics-apm.service_summary.1m-default-2023.09.26-000005",
					".ds-metrics-apm.service_transaction.1m-default-2023.09.26-000005",".ds-metrics-apm.transaction.1m-default-2023.09.26-000005"],
					"fields":{"labels.telemetry_auto_version":{"keyword":{"type":"keyword","metadata_field":false,"searchable":true,"aggregatable":true}},
					"labels":{"object":{"type":"object","metadata_field":false,"searchable":false,"aggregatable":false}}}}`
			},
			want: `{"counts":{"global_labels":{"1d":1}}}`},
		{source: "global_labels › returns 0 count of global labels when not present", task: GlobalLabels(),
			answer: func(int, es.Request, map[string]any) string { return `{"indices":[],"fields":{}}` },
			want:   `{"counts":{"global_labels":{"1d":0}}}`},
		{source: "cloud › returns a map of cloud provider data", task: Cloud(),
			answer: func(int, es.Request, map[string]any) string {
				return `{"aggregations":{"availability_zone":{"buckets":[{"doc_count":1,"key":"us-west-1"},{"doc_count":1,"key":"europe-west1-c"}]},
					"provider":{"buckets":[{"doc_count":1,"key":"aws"},{"doc_count":1,"key":"gcp"}]},
					"region":{"buckets":[{"doc_count":1,"key":"us-west"},{"doc_count":1,"key":"europe-west1"}]}}}`
			},
			want: `{"cloud":{"availability_zone":["us-west-1","europe-west1-c"],"provider":["aws","gcp"],"region":["us-west","europe-west1"]}}`},
		{source: "cloud › with no results › returns an empty map", task: Cloud(), note: "Kibana's {} is written as the zero-shard answer (no aggregations)",
			answer: func(int, es.Request, map[string]any) string { return zeroShards },
			want:   `{"cloud":{"availability_zone":[],"provider":[],"region":[]}}`},
		{source: "host › returns a map of host provider data", task: Host(),
			answer: func(int, es.Request, map[string]any) string {
				return `{"aggregations":{"platform":{"buckets":[{"doc_count":1,"key":"linux"},{"doc_count":1,"key":"windows"},{"doc_count":1,"key":"macos"}]}}}`
			},
			want: `{"host":{"os":{"platform":["linux","windows","macos"]}}}`},
		{source: "host › with no results › returns an empty map", task: Host(), note: "Kibana's {} is written as the zero-shard answer",
			answer: func(int, es.Request, map[string]any) string { return zeroShards },
			want:   `{"host":{"os":{"platform":[]}}}`},
		{source: "processor_events › returns a map of processor events", task: ProcessorEvents(), now: peNow,
			note: "Kibana's mocked clock makes every age 0; the fixture's oldest document is as old as the run's clock, " +
				"and Elasticsearch's fields API sends the date as a string",
			answer: func(_ int, _ es.Request, body map[string]any) string {
				if body["track_total_hits"] == true {
					return `{"hits":{"total":{"value":1,"relation":"eq"},"hits":[]}}`
				}
				return `{"hits":{"hits":[{"_id":"x","fields":{"@timestamp":["` + peNow.Format("2006-01-02T15:04:05.000Z") + `"]}}]}}`
			},
			want: `{"counts":{"error":{"1d":1,"all":1},"metric":{"1d":1,"all":1},"onboarding":{"1d":1,"all":1},"span":{"1d":1,"all":1},"transaction":{"1d":1,"all":1}},` +
				`"retainment":{"error":{"ms":0},"metric":{"ms":0},"onboarding":{"ms":0},"span":{"ms":0},"transaction":{"ms":0}}}`},
		{source: "integrations › returns the count of ML jobs", task: Integrations(),
			note: "Kibana's mock answers {body: {count: 1}}, a shape the current client never returns (it returns the body itself); " +
				"against a real cluster Kibana reads body.count of the body and sends 0. The fixture is the real ML answer, and apmtel reads its count",
			answer: func(int, es.Request, map[string]any) string {
				return `{"count":1,"jobs":[{"job_id":"apm-production-4b8f-high_mean_response_time","job_type":"anomaly_detector","groups":["apm"]}]}`
			},
			want: `{"integrations":{"ml":{"all_jobs_count":1}}}`},
		{source: "integrations › with no data › returns a count of 0", task: Integrations(), note: "Kibana's {} is written as the ML answer without jobs",
			answer: func(int, es.Request, map[string]any) string { return `{"count":0,"jobs":[]}` },
			want:   `{"integrations":{"ml":{"all_jobs_count":0}}}`},
		{source: "indices_stats › returns a map of index stats (snapshot)", task: IndicesStats(),
			note: "one _stats answer for every _stats call and one search answer, as Kibana's mocks; value_count, not doc_count, is the 1d count",
			answer: func(_ int, r es.Request, _ map[string]any) string {
				if r.Endpoint == "_stats" {
					return stats(2, 1, 50, 2, 100)
				}
				iv := func(key string, docs, values int) string {
					return fmt.Sprintf(`{"key":"%s","doc_count":%d,"metrics_value_count":{"value":%d}}`, key, docs, values)
				}
				ms := func(key string, docs int, ivs ...string) string {
					return fmt.Sprintf(`{"key":"%s","doc_count":%d,"rollup_interval":{"buckets":[%s]}}`, key, docs, strings.Join(ivs, ","))
				}
				return `{"aggregations":{"metricsets":{"buckets":[` + strings.Join([]string{
					ms("service_transaction", 3240, iv("10m", 1080, 6), iv("1m", 1080, 6), iv("60m", 1080, 6)),
					ms("transaction", 3240, iv("10m", 1080, 6), iv("1m", 1080, 6), iv("60m", 1080, 6)),
					ms("service_destination", 1620, iv("10m", 540, 3), iv("1m", 540, 3), iv("60m", 540, 3)),
					ms("service_summary", 30, iv("1m", 12, 12), iv("10m", 9, 9), iv("60m", 9, 9)),
					ms("span_breakdown", 12),
					ms("app", 6),
				}, ",") + `]}}}`
			},
			want: indicesStatsSnapshot(2, 1, 50, 2, 100, map[string]int{
				"app": 6, "service_destination-1m": 3, "service_destination-10m": 3, "service_destination-60m": 3,
				"service_summary-1m": 12, "service_summary-10m": 9, "service_summary-60m": 9,
				"service_transaction-1m": 6, "service_transaction-10m": 6, "service_transaction-60m": 6,
				"transaction-1m": 6, "transaction-10m": 6, "transaction-60m": 6,
			})},
		{source: "indices_stats › with no results (snapshot)", task: IndicesStats(), note: "Kibana's {} search answer is written as the zero-shard answer",
			answer: func(_ int, r es.Request, _ map[string]any) string {
				if r.Endpoint == "_stats" {
					return stats(0, 0, 0, 0, 0)
				}
				return zeroShards
			},
			want: indicesStatsSnapshot(0, 0, 0, 0, 0, nil)},
		{source: "cardinality › returns cardinalities", task: Cardinality(),
			answer: func(_ int, _ es.Request, body map[string]any) string {
				if f, _ := at(body, "query", "bool", "filter").([]any); len(f) == 2 {
					return `{"aggregations":{"client.geo.country_iso_code":{"value":5},"transaction.name":{"value":1},"user_agent.original":{"value":2}}}`
				}
				return `{"aggregations":{"transaction.name":{"value":3},"user_agent.original":{"value":4}}}`
			},
			want: `{"cardinality":{"client":{"geo":{"country_iso_code":{"rum":{"1d":5}}}},"transaction":{"name":{"all_agents":{"1d":3},"rum":{"1d":1}}},"user_agent":{"original":{"all_agents":{"1d":4},"rum":{"1d":2}}}}}`},
		{source: "service groups › returns service group stats / should return stats from all spaces", task: ServiceGroups(),
			note: "Kibana asks the saved-objects client in all spaces; apmtel searches the saved-object indices with no namespace filter, so the hits are the stored documents",
			answer: func(int, es.Request, map[string]any) string {
				return savedObjects("apm-service-group",
					`"apm-service-group":{"kuery":"service.environment: production"}`,
					`"apm-service-group":{"kuery":"agent.name: go"}`)
			},
			want: `{"service_groups":{"kuery_fields":["service.environment","agent.name"],"total":2}}`,
			check: func(t *testing.T, reqs []es.Request) {
				q := asJSON(t, reqs[0].Body)
				if strings.Contains(q, "namespace") || strings.Join(reqs[0].Index, ",") != ".kibana*" || reqs[0].Params.Get("expand_wildcards") != "open,hidden" {
					t.Errorf("saved objects of every space must be read: %s %s", reqs[0].Path(), q)
				}
			}},
		{source: "service groups › returns unique fields", task: ServiceGroups(),
			answer: func(int, es.Request, map[string]any) string {
				return savedObjects("apm-service-group",
					`"apm-service-group":{"kuery":"service.environment: production"}`,
					`"apm-service-group":{"kuery":"service.environment: production and agent.name: go"}`)
			},
			want: `{"service_groups":{"kuery_fields":["service.environment","agent.name"],"total":2}}`},
		{source: "custom dashboards › returns custom dashboards stats from all spaces", task: CustomDashboards(),
			answer: func(int, es.Request, map[string]any) string {
				return savedObjects("apm-custom-dashboards",
					`"apm-custom-dashboards":{"kuery":"service.name: frontend and service.environment: prod"}`,
					`"apm-custom-dashboards":{"kuery":"service.name: frontend"}`)
			},
			want: `{"custom_dashboards":{"kuery_fields":["service.name","service.environment"],"total":2}}`},
		{source: "top_traces › returns max and median number of documents in top traces", task: TopTraces(),
			answer: func(int, es.Request, map[string]any) string {
				return `{"aggregations":{"top_traces":{"buckets":[{"key":"521485","doc_count":1026},{"key":"594439","doc_count":1025},
					{"key":"070251","doc_count":1023},{"key":"108079","doc_count":1023},{"key":"118887","doc_count":1023}]},
					"max":{"value":1026,"keys":["521485"]},"median":{"values":{"50.0":1023}}}}`
			},
			want: `{"top_traces":{"max":1026,"median":1023}}`},
		{source: "services › should return services per agent name (snapshot)", task: Services(),
			note: "the snapshot predates the EDOT and OTel names in AGENT_NAMES; Kibana's current lists add them at 0",
			answer: func(_ int, _ es.Request, body map[string]any) string {
				first := at(body, "query", "bool", "filter", 0)
				switch {
				case at(first, "term", "agent.name") == "java":
					return `{"aggregations":{"services":{"value":10}}}`
				case at(first, "prefix") != nil:
					b := make([]string, len(kibanaTestOTelKeys))
					for i, k := range kibanaTestOTelKeys {
						b[i] = fmt.Sprintf(`{"key":"%s","doc_count":%d,"services":{"value":%d}}`, k, i+1, i+1)
					}
					return `{"aggregations":{"agent_name":{"buckets":[` + strings.Join(b, ",") + `]}}}`
				case at(first, "exists") != nil:
					return `{"hits":{"total":{"value":100,"relation":"eq"},"hits":[]}}`
				}
				return `{"aggregations":{"services":{"value":0}}}`
			},
			want: servicesSnapshot()},
		{source: "agents › should return agent data per agent name (snapshot)", task: Agents(),
			note: "the snapshot predates the EDOT and OTel names in AGENT_NAMES; Kibana's current lists add them with empty lists",
			answer: func(_ int, _ es.Request, body map[string]any) string {
				first := at(body, "query", "bool", "filter", 0)
				switch {
				case at(first, "term", "agent.name") == "java":
					return `{"aggregations":{` + agentDataMock + `}}`
				case at(first, "prefix") != nil:
					b := make([]string, len(kibanaTestOTelKeys))
					for i, k := range kibanaTestOTelKeys {
						b[i] = fmt.Sprintf(`{"key":"%s","doc_count":1,%s}`, k, agentDataMock)
					}
					return `{"aggregations":{"agent_name":{"buckets":[` + strings.Join(b, ",") + `]}}}`
				}
				return `{"aggregations":{` + emptyAgentAggs + `}}`
			},
			want: agentsSnapshot()},

		// Tasks Kibana's test file does not cover.
		{source: "apmtel: agent_configuration counts the configurations", task: AgentConfiguration(),
			answer: func(int, es.Request, map[string]any) string {
				return `{"hits":{"total":{"value":3,"relation":"eq"},"hits":[]}}`
			},
			want: `{"counts":{"agent_configuration":{"all":3}}}`},
		{source: "apmtel: per_agent_config_settings splits setting names; has_error is !!error", task: PerAgentConfigSettings(),
			answer: func(_ int, r es.Request, _ map[string]any) string {
				if r.Method == "DELETE" {
					return `{"succeeded":true,"num_freed":1}`
				}
				return `{"_scroll_id":"s1","hits":{"total":{"value":2,"relation":"eq"},"hits":[
					{"_id":"1","_source":{"service":{"name":"a"},"agent_name":"java","error":{"code":3},"settings":{"capture_body":"all","my_custom_key":"x"}}},
					{"_id":"2","_source":{"service":{},"settings":{"transaction_sample_rate":"0.5"}}}]}}`
			},
			want: `{"per_agent_config_settings":[{"advanced_settings":["my_custom_key"],"agent_name":"java","has_error":true,"settings":["capture_body"]},` +
				`{"advanced_settings":[],"has_error":false,"settings":["transaction_sample_rate"]}]}`},
		{source: "apmtel: versions reads observer.version", task: Versions(),
			answer: func(int, es.Request, map[string]any) string {
				return `{"hits":{"hits":[{"_id":"x","fields":{"observer.version":["8.16.1"]}}]}}`
			},
			want: `{"version":{"apm_server":{"major":8,"minor":16,"patch":1}}}`},
		{source: "apmtel: groupings", task: Groupings(),
			// The five searches run concurrently: answered by content.
			answer: func(_ int, _ es.Request, body map[string]any) string {
				b, _ := json.Marshal(body["aggs"])
				switch aggs := string(b); {
				case strings.Contains(aggs, "error_groups"):
					return `{"aggregations":{"top_service":{"buckets":[{"key":"a","doc_count":9,"error_groups":{"value":4}}]}}}`
				case strings.Contains(aggs, "transaction_groups"):
					return `{"aggregations":{"top_service":{"buckets":[{"key":"b","doc_count":9,"transaction_groups":{"value":7}}]}}}`
				case strings.Contains(aggs, "service_environments"):
					return `{"aggregations":{"service_name":{"value":3},"service_environments":{"value":2}}}`
				case strings.Contains(aggs, "span_destination_service_resource"):
					return `{"aggregations":{"span_destination_service_resource":{"value":5}}}`
				}
				return `{"hits":{"total":{"value":11,"relation":"eq"},"hits":[]}}`
			},
			want: `{"counts":{"environments":{"1d":2},"max_error_groups_per_service":{"1d":4},"max_transaction_groups_per_service":{"1d":7},"services":{"1d":3},"span_destination_service_resource":{"1d":5},"traces":{"1d":11}}}`},
		{source: "apmtel: application_usage", task: ApplicationUsage(),
			note:   "Kibana's collector test mocks the saved-objects finder; this is the search answer it stands for",
			answer: func(int, es.Request, map[string]any) string { return appUsageFixture },
			want:   appUsageFixtureWant},
		{source: "apmtel: ui_counters", task: UICounters(),
			note:   "Kibana's collector test mocks the saved-objects finder; this is the search answer it stands for",
			answer: func(int, es.Request, map[string]any) string { return uiCountersFixture },
			want:   uiCountersFixtureWant},
		{source: "apmtel: per_service", task: PerService(),
			answer: func(int, es.Request, map[string]any) string { return esDocPerServiceResponse },
			want: `{"per_service":[{"agent":{"activation_method":"javaagent-flag","name":"java","version":"1.38.0"},"cloud":{"availability_zones":[],"providers":["aws"],"regions":["us-east-1"]},` +
				`"container":{"id":"c1"},"faas":{"trigger":{"type":[]}},"kubernetes":{"pod":{"name":null}},"num_service_nodes":2,"num_transaction_types":3,` +
				`"service":{"framework":{"name":null,"version":null},"language":{"name":"Java","version":"17"},"runtime":{"name":"Java","version":"17.0.2"}},` +
				`"service_id":"` + sha256hexOf("production") + "~" + sha256hexOf("opbeans-java") + `","timed_out":false}]}`},
	}
}

func TestKibanaCases(t *testing.T) {
	covered := map[string]bool{}
	for _, tc := range kibanaCases() {
		t.Run(tc.source, func(t *testing.T) {
			covered[tc.task.Name] = true
			rec := &recorder{answer: func(i int, r es.Request) (string, error) {
				var body map[string]any
				if r.Body != nil {
					b, _ := json.Marshal(r.Body)
					_ = json.Unmarshal(b, &body)
				}
				return tc.answer(i, r, body), nil
			}}
			env := testEnv(rec)
			if !tc.now.IsZero() {
				env.Now = func() time.Time { return tc.now }
			}
			f, err := tc.task.Collect(t.Context(), env)
			if err != nil {
				t.Fatalf("%s: %v", tc.task.Name, err)
			}
			if d := diffJSON(t, tc.want, f); d != "" {
				t.Errorf("%s (note: %s) (-want +got):\n%s", tc.task.Name, tc.note, d)
			}
			checkPluginSchema(t, tc.task.PluginName(), f)
			if tc.check != nil {
				tc.check(t, rec.reqs)
			}
		})
	}
	for _, name := range Default().Names() {
		if !covered[name] {
			t.Errorf("task %s has no fixture in kibanaCases", name)
		}
	}
}

// checkPluginSchema is checkSchema for a task of any plugin.
func checkPluginSchema(t *testing.T, plugin string, f Fragment) {
	t.Helper()
	if plugin == PluginAPM {
		checkSchema(t, f)
		return
	}
	var generic map[string]any
	b, _ := json.Marshal(f)
	_ = json.Unmarshal(b, &generic)
	if bad := schema.ValidatePlugin(plugin, generic); len(bad) > 0 {
		t.Errorf("fragment outside the %s schema:\n%s", plugin, strings.Join(schema.Summary(bad), "\n"))
	}
}

// checkSchema fails on every field of f the payload schema does not map or
// types differently (the same check the finalizer runs before an upload).
func checkSchema(t *testing.T, f Fragment) {
	t.Helper()
	var generic map[string]any
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(b, &generic)
	var bad []schema.Problem
	for _, p := range schema.Validate(generic) {
		if !dynamicAgentKey(p) {
			bad = append(bad, p)
		}
	}
	if len(bad) > 0 {
		t.Errorf("fragment outside the schema:\n%s", strings.Join(schema.Summary(bad), "\n"))
	}
}

// dynamicAgentKey reports an unmapped agent key found by the OpenTelemetry
// prefix queries (say otlp/java/elastic in Kibana's own test): Kibana sends
// whatever agent.name the data holds, its schema cannot list them all, and
// apmtel sends them too (listed in the run's report). Anything else unmapped
// is a failure.
func dynamicAgentKey(p schema.Problem) bool {
	for _, root := range []string{"services_per_agent.", "agents."} {
		if rest, ok := strings.CutPrefix(p.Path, root); ok && p.Kind == "unmapped" && !strings.Contains(strings.TrimPrefix(strings.TrimPrefix(rest, "otlp/"), "opentelemetry/"), ".") {
			return strings.HasPrefix(rest, "otlp") || strings.HasPrefix(rest, "opentelemetry")
		}
	}
	return false
}

// The schema lists the task names itself (so it needs no import of this
// package); they must be the registry's, in order.
func TestSchemaTaskNamesAreTheRegistry(t *testing.T) {
	var apm []string
	for _, task := range Default().All() {
		if task.PluginName() == PluginAPM {
			apm = append(apm, task.Name)
		}
	}
	if got, want := strings.Join(schema.TaskNames, ","), strings.Join(apm, ","); got != want {
		t.Errorf("schema.TaskNames = %s\nregistry        = %s", got, want)
	}
}

// The check can fail: a dotted cardinality key, as apmtel once sent, is
// reported.
func TestCheckSchemaCatchesDottedKeys(t *testing.T) {
	var generic map[string]any
	_ = json.Unmarshal([]byte(`{"cardinality":{"transaction.name":{"all_agents":{"1d":3}}}}`), &generic)
	probs := schema.Summary(schema.Validate(generic))
	if len(probs) != 1 || probs[0] != "cardinality.transaction.name is not in the schema" {
		t.Errorf("problems %q", probs)
	}
}
