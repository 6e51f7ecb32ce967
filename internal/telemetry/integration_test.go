package telemetry_test

// Integration tests: every task against the real search engine (OpenSearch
// in CI) on a data set this file generates. Expected values are derived from
// the generated documents by simple counting here, never by running the
// tasks' own code.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/sample"
	"github.com/apmtel/apmtel/internal/schema"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/internal/testenv"
)

type svc struct {
	name, env, agent, version, activation, framework, fwVersion, lang, langVersion, runtime, rtVersion string
	provider, region, zone, platform                                                                   string
	nodes                                                                                              []string
}

var services = []svc{
	{"opbeans-java", "production", "java", "1.38.0", "javaagent-flag", "Spring", "5", "Java", "17", "Java", "17.0.2", "aws", "us-east-1", "us-east-1a", "linux", []string{"j1", "j2"}},
	{"opbeans-node", "staging", "nodejs", "4.1.0", "require", "express", "4", "javascript", "20", "node", "20.1", "gcp", "europe-west1", "europe-west1-b", "linux", []string{"n1"}},
	{"opbeans-rum", "", "rum-js", "5.16.0", "", "", "", "javascript", "", "", "", "", "", "", "windows", []string{"r1"}},
	{"otel-orders", "production", "opentelemetry/java", "1.32.0", "", "", "", "java", "21", "", "", "aws", "us-east-1", "us-east-1b", "linux", []string{"o1"}},
}

type doc struct {
	index string
	src   map[string]any
	event string
	svc   svc
	ts    time.Time
}

type dataset struct {
	p       string
	now     time.Time
	newest  time.Time
	docs    []doc
	configs []map[string]any
	groups  []string // service-group kueries
}

func (d *dataset) add(index, event string, s svc, ts time.Time, extra map[string]any) {
	src := map[string]any{
		"@timestamp": ts.UTC().Format(time.RFC3339Nano),
		"processor":  map[string]any{"event": event},
		"observer":   map[string]any{"version": "8.15.0", "hostname": "apm-1"},
	}
	d.docs = append(d.docs, doc{index: d.p + index, src: src, event: event, svc: s, ts: ts})
	if s.name == "" {
		return
	}
	src["agent"] = map[string]any{"name": s.agent, "version": s.version}
	src["service"] = map[string]any{"name": s.name}
	src["host"] = map[string]any{"os": map[string]any{"platform": s.platform}, "name": "h-" + s.name}
	if s.activation != "" {
		src["agent"].(map[string]any)["activation_method"] = s.activation
	}
	sv := src["service"].(map[string]any)
	if s.env != "" {
		sv["environment"] = s.env
	}
	if s.framework != "" {
		sv["framework"] = map[string]any{"name": s.framework, "version": s.fwVersion}
	}
	if s.lang != "" {
		sv["language"] = map[string]any{"name": s.lang, "version": s.langVersion}
	}
	if s.runtime != "" {
		sv["runtime"] = map[string]any{"name": s.runtime, "version": s.rtVersion}
	}
	if s.provider != "" {
		src["cloud"] = map[string]any{"provider": s.provider, "region": s.region, "availability_zone": s.zone}
	}
	for k, v := range extra {
		if m, ok := v.(map[string]any); ok {
			if cur, ok := src[k].(map[string]any); ok {
				for kk, vv := range m {
					cur[kk] = vv
				}
				continue
			}
		}
		src[k] = v
	}
}

func newDataset(p string, now time.Time) *dataset {
	d := &dataset{p: p, now: now, newest: now.Add(-2 * time.Minute)}
	// Transactions and spans of the last half hour (inside now-1h and now-1d).
	for i := 0; i < 24; i++ {
		s := services[i%len(services)]
		ts := now.Add(-time.Duration(10+i) * time.Minute)
		trace := fmt.Sprintf("trace-%d", i%5)
		tx := map[string]any{"transaction": map[string]any{"name": fmt.Sprintf("GET /%d", i%3), "type": "request", "result": "HTTP 2xx"},
			"trace": map[string]any{"id": trace}, "service": map[string]any{"node": map[string]any{"name": s.nodes[i%len(s.nodes)]}}}
		if s.agent == "rum-js" {
			tx["transaction"] = map[string]any{"name": "/home", "type": "page-load"}
			tx["user_agent"] = map[string]any{"name": "Chrome", "original": fmt.Sprintf("Chrome/%d", i%2)}
			tx["client"] = map[string]any{"geo": map[string]any{"country_iso_code": []string{"US", "DE", "FR"}[i%3]}}
		}
		if i%4 == 1 {
			tx["parent"] = map[string]any{"id": "p1"}
		}
		d.add("traces-apm-default", "transaction", s, ts, tx)
		d.add("traces-apm-default", "span", s, ts, map[string]any{"trace": map[string]any{"id": trace},
			"span": map[string]any{"destination": map[string]any{"service": map[string]any{"resource": []string{"postgresql", "redis"}[i%2]}}}})
	}
	// The newest transaction, and two inside the aggregated_transactions window [newest-6m, newest-5m).
	d.add("traces-apm-default", "transaction", services[0], d.newest, map[string]any{"transaction": map[string]any{"name": "GET /new", "type": "request"}, "observer": map[string]any{"version": "8.16.1"}})
	for i, s := range []svc{services[0], services[1]} {
		d.add("traces-apm-default", "transaction", s, d.newest.Add(-5*time.Minute-30*time.Second), map[string]any{"transaction": map[string]any{"name": fmt.Sprint("GET /w", i), "type": "request"}})
	}
	// Old documents (3 days): counted in "all" only.
	for i := 0; i < 6; i++ {
		d.add("traces-apm-default", "transaction", services[1], now.Add(-72*time.Hour-time.Duration(i)*time.Minute), map[string]any{"transaction": map[string]any{"name": "old", "type": "request"}})
	}
	// Errors.
	for i := 0; i < 9; i++ {
		s := services[i%2]
		d.add("logs-apm.error-default", "error", s, now.Add(-time.Duration(i+1)*time.Hour), map[string]any{"error": map[string]any{"grouping_key": fmt.Sprintf("g%d", i%(3+i%2))}})
	}
	// Metrics: app metricset and rollups.
	for i := 0; i < 4; i++ {
		d.add("metrics-apm.app.opbeans-java-default", "metric", services[0], now.Add(-time.Duration(i+1)*time.Hour), map[string]any{"metricset": map[string]any{"name": "app"}})
	}
	for i := 0; i < 3; i++ {
		d.add("metrics-apm.transaction.1m-default", "metric", services[0], now.Add(-time.Duration(i+1)*time.Minute),
			map[string]any{"metricset": map[string]any{"name": "transaction", "interval": "1m"}, "labels": map[string]any{"team": "a", "tier": "b"}})
	}
	d.add("metrics-apm.service_summary.10m-default", "metric", services[1], now.Add(-time.Hour), map[string]any{"metricset": map[string]any{"name": "service_summary", "interval": "10m"}})
	d.add("apm-onboarding-default", "onboarding", svc{}, now.Add(-100*time.Hour), nil)
	d.configs = []map[string]any{
		{"service": map[string]any{"name": "opbeans-java"}, "agent_name": "java", "settings": map[string]any{"capture_body": "all", "my_key": "1"}},
		{"service": map[string]any{}, "settings": map[string]any{"transaction_sample_rate": "0.2"}},
		{"service": map[string]any{"name": "x"}, "agent_name": "opentelemetry/java/elastic", "error": "failed", "settings": map[string]any{"logging_level": "debug"}},
	}
	d.groups = []string{"service.name: opbeans-java or agent.name: java", "labels.team: a and not service.environment: staging", "service.name: (broken"}
	return d
}

func (d *dataset) load(t *testing.T, c *es.Client) {
	t.Helper()
	ctx := context.Background()
	if err := sample.PutTemplates(ctx, c, d.p); err != nil {
		t.Fatal(err)
	}
	var docs []sample.Doc
	for _, x := range d.docs {
		docs = append(docs, sample.Doc{Index: x.index, Source: x.src})
	}
	for _, idx := range []string{d.p + ".apm-agent-configuration", d.p + ".kibana_1"} {
		if err := sample.PutPlainIndex(ctx, c, idx); err != nil {
			t.Fatal(err)
		}
	}
	for i, cfg := range d.configs {
		docs = append(docs, sample.Doc{Index: d.p + ".apm-agent-configuration", ID: fmt.Sprint(i), Source: cfg})
	}
	for i, k := range d.groups {
		docs = append(docs, sample.Doc{Index: d.p + ".kibana_1", ID: fmt.Sprint("apm-service-group:", i), Source: map[string]any{
			"type": "apm-service-group", "updated_at": d.now.Add(-time.Duration(i) * time.Hour).Format(time.RFC3339),
			"apm-service-group": map[string]any{"groupName": fmt.Sprint("g", i), "kuery": k}}})
	}
	docs = append(docs, sample.Doc{Index: d.p + ".kibana_1", ID: "apm-custom-dashboards:1", Source: map[string]any{
		"type": "apm-custom-dashboards", "apm-custom-dashboards": map[string]any{"dashboardSavedObjectId": "d1"}}})
	if err := sample.Bulk(ctx, c, docs, true); err != nil {
		t.Fatal(err)
	}
	if err := sample.Refresh(ctx, c, d.p+"*"); err != nil {
		t.Fatal(err)
	}
}

func (d *dataset) filter(pred func(doc) bool) []doc {
	var out []doc
	for _, x := range d.docs {
		if pred(x) {
			out = append(out, x)
		}
	}
	return out
}

func (d *dataset) day(x doc) bool { return d.now.Sub(x.ts) < 24*time.Hour }

func distinct(docs []doc, f func(doc) string) int {
	m := map[string]bool{}
	for _, x := range docs {
		if v := f(x); v != "" {
			m[v] = true
		}
	}
	return len(m)
}

func str(m map[string]any, path ...string) string {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = mm[p]
	}
	s, _ := cur.(string)
	return s
}

func shaHex(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	var x any
	_ = json.Unmarshal(b, &x)
	b, _ = json.Marshal(x)
	return string(b)
}

func TestTasksAgainstSearchEngine(t *testing.T) {
	testenv.Engines(t, tasksAgainst)
}

func tasksAgainst(t *testing.T, engine testenv.Engine) {
	c := engine.Client(t)
	p := testenv.Prefix(t, c)
	d := newDataset(p, time.Now())
	d.load(t, c)
	env := telemetry.Env{ES: c, Indices: testenv.Indices(p), SearchTimeout: 30 * time.Second, Now: time.Now}

	run := func(t *testing.T, task telemetry.Task) (map[string]any, []string) {
		t.Helper()
		var warnings []string
		e := env
		e.Warn = func(m string) { warnings = append(warnings, m) }
		f, err := task.Collect(context.Background(), e)
		if err != nil {
			t.Fatalf("%s: %v", task.Name, err)
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(mustJSON(f)), &m)
		// Every field a task emits must be in the payload schema.
		if probs := schema.Validate(m); len(probs) > 0 {
			t.Errorf("%s emits fields outside the schema: %v", task.Name, schema.Summary(probs))
		}
		return m, warnings
	}
	eq := func(t *testing.T, what string, got, want any) {
		t.Helper()
		if g, w := mustJSON(got), mustJSON(want); g != w {
			t.Errorf("%s = %s, want %s", what, g, w)
		}
	}
	all := func(x doc) bool { return true }
	txOrSpan := func(x doc) bool { return x.event == "transaction" || x.event == "span" }

	t.Run("processor_events and agent_configuration", func(t *testing.T) {
		f, _ := run(t, telemetry.ProcessorEvents())
		for _, ev := range []string{"transaction", "span", "error", "metric", "onboarding"} {
			evd := d.filter(func(x doc) bool { return x.event == ev })
			eq(t, "counts."+ev, f["counts"].(map[string]any)[ev], map[string]int{"1d": len(d.filter(func(x doc) bool { return x.event == ev && d.day(x) })), "all": len(evd)})
		}
		f, _ = run(t, telemetry.AgentConfiguration())
		eq(t, "agent_configuration", f, map[string]any{"counts": map[string]any{"agent_configuration": map[string]any{"all": len(d.configs)}}})
	})

	t.Run("environments", func(t *testing.T) {
		f, _ := run(t, telemetry.Environments())
		envs := map[string][]string{}
		for _, x := range d.filter(func(x doc) bool { return txOrSpan(x) && d.day(x) }) {
			e := x.svc.env
			found := false
			for _, have := range envs[x.svc.name] {
				found = found || have == e
			}
			if !found {
				envs[x.svc.name] = append(envs[x.svc.name], e)
			}
		}
		without, multiple := 0, 0
		for _, es := range envs {
			if len(es) > 1 {
				multiple++
			}
			for _, e := range es {
				if e == "" {
					without++
				}
			}
		}
		eq(t, "without", f["environments"].(map[string]any)["services_without_environment"], without)
		eq(t, "multiple", f["environments"].(map[string]any)["services_with_multiple_environments"], multiple)
		eq(t, "top", f["environments"].(map[string]any)["top_environments"], []string{"production", "staging"})
	})

	t.Run("services", func(t *testing.T) {
		f, _ := run(t, telemetry.Services())
		per := f["services_per_agent"].(map[string]any)
		day := d.filter(d.day)
		for _, agent := range []string{"java", "nodejs", "rum-js", "opentelemetry/java", "go"} {
			want := distinct(d.filter(func(x doc) bool { return d.day(x) && x.svc.agent == agent }), func(x doc) string { return x.svc.name })
			if agent == "opentelemetry/java" || want > 0 || per[agent] != nil {
				eq(t, "services_per_agent."+agent, per[agent], want)
			}
		}
		for _, agent := range []string{"opentelemetry/python/elastic", "opentelemetry/java/opentelemetry-java-instrumentation"} {
			eq(t, "services_per_agent."+agent, per[agent], 0) // emitted without data, as Kibana does
		}
		eq(t, "has_any_services", f["has_any_services"], len(day) > 0)
		eq(t, "has_any_services_per_official_agent", f["has_any_services_per_official_agent"], true)
	})

	t.Run("versions", func(t *testing.T) {
		f, _ := run(t, telemetry.Versions())
		eq(t, "version", f, map[string]any{"version": map[string]any{"apm_server": map[string]int{"major": 8, "minor": 16, "patch": 1}}})
	})

	t.Run("groupings", func(t *testing.T) {
		f, _ := run(t, telemetry.Groupings())
		counts := f["counts"].(map[string]any)
		maxGroups := func(event, field string) int {
			best := 0
			for _, s := range services {
				n := distinct(d.filter(func(x doc) bool { return x.event == event && d.day(x) && x.svc.name == s.name }), func(x doc) string {
					if field == "error" {
						return str(x.src, "error", "grouping_key")
					}
					return str(x.src, "transaction", "name")
				})
				best = max(best, n)
			}
			return best
		}
		roots := len(d.filter(func(x doc) bool { return x.event == "transaction" && d.day(x) && str(x.src, "parent", "id") == "" }))
		eq(t, "max_error_groups", counts["max_error_groups_per_service"], map[string]int{"1d": maxGroups("error", "error")})
		eq(t, "max_transaction_groups", counts["max_transaction_groups_per_service"], map[string]int{"1d": maxGroups("transaction", "tx")})
		eq(t, "traces", counts["traces"], map[string]int{"1d": roots})
		eq(t, "services", counts["services"], map[string]int{"1d": distinct(d.filter(d.day), func(x doc) string { return x.svc.name })})
		eq(t, "environments", counts["environments"], map[string]int{"1d": distinct(d.filter(d.day), func(x doc) string { return x.svc.env })})
		eq(t, "span destinations", counts["span_destination_service_resource"], map[string]int{"1d": distinct(d.filter(func(x doc) bool { return x.event == "span" && d.day(x) }),
			func(x doc) string { return str(x.src, "span", "destination", "service", "resource") })})
	})

	t.Run("cloud host cardinality top_traces", func(t *testing.T) {
		f, _ := run(t, telemetry.Cloud())
		eq(t, "cloud.provider", f["cloud"].(map[string]any)["provider"], topTerms(d.filter(all), func(x doc) string { return x.svc.provider }))
		eq(t, "cloud.availability_zone", f["cloud"].(map[string]any)["availability_zone"], topTerms(d.filter(all), func(x doc) string { return x.svc.zone }))
		f, _ = run(t, telemetry.Host())
		eq(t, "host.os.platform", f["host"].(map[string]any)["os"].(map[string]any)["platform"], topTerms(d.filter(all), func(x doc) string { return x.svc.platform }))
		f, _ = run(t, telemetry.Cardinality())
		tx := d.filter(func(x doc) bool { return txOrSpan(x) && d.day(x) })
		rum := d.filter(func(x doc) bool { return txOrSpan(x) && d.day(x) && x.svc.agent == "rum-js" })
		// Nested as Kibana nests it: each dot of the field name is a level.
		eq(t, "cardinality", f["cardinality"], map[string]any{
			"client": map[string]any{"geo": map[string]any{"country_iso_code": map[string]any{"rum": map[string]int{"1d": distinct(rum, func(x doc) string { return str(x.src, "client", "geo", "country_iso_code") })}}}},
			"transaction": map[string]any{"name": map[string]any{"all_agents": map[string]int{"1d": distinct(tx, func(x doc) string { return str(x.src, "transaction", "name") })},
				"rum": map[string]int{"1d": distinct(rum, func(x doc) string { return str(x.src, "transaction", "name") })}}},
			"user_agent": map[string]any{"original": map[string]any{"all_agents": map[string]int{"1d": distinct(tx, func(x doc) string { return str(x.src, "user_agent", "original") })},
				"rum": map[string]int{"1d": distinct(rum, func(x doc) string { return str(x.src, "user_agent", "original") })}}},
		})
		f, _ = run(t, telemetry.TopTraces())
		perTrace := map[string]int{}
		for _, x := range d.filter(func(x doc) bool { return d.day(x) }) {
			if id := str(x.src, "trace", "id"); id != "" {
				perTrace[id]++
			}
		}
		var counts []int
		for _, n := range perTrace {
			counts = append(counts, n)
		}
		sort.Ints(counts)
		eq(t, "top_traces.max", f["top_traces"].(map[string]any)["max"], counts[len(counts)-1])
	})

	t.Run("aggregated_transactions", func(t *testing.T) {
		engine.Need(t, testenv.Painless)
		f, _ := run(t, telemetry.AggregatedTransactions())
		window := d.filter(func(x doc) bool {
			return x.event == "transaction" && !x.ts.Before(d.newest.Add(-6*time.Minute)) && x.ts.Before(d.newest.Add(-5*time.Minute))
		})
		for _, v := range []string{"current_implementation", "with_country", "no_observer_name"} {
			got := f["aggregated_transactions"].(map[string]any)[v].(map[string]any)
			// Every window document differs in transaction.name, so each is its own group.
			eq(t, v+".expected_metric_document_count", got["expected_metric_document_count"], len(window))
			eq(t, v+".transaction_count", got["transaction_count"], len(window))
			eq(t, v+".ratio", got["ratio"], 1)
		}
	})

	t.Run("agents", func(t *testing.T) {
		f, _ := run(t, telemetry.Agents())
		java := f["agents"].(map[string]any)["java"].(map[string]any)
		s := services[0]
		eq(t, "agents.java.agent", java["agent"], map[string]any{"activation_method": []string{s.activation}, "version": []string{s.version}})
		eq(t, "agents.java.service.framework", java["service"].(map[string]any)["framework"], map[string]any{
			"name": []string{s.framework}, "version": []string{s.fwVersion}, "composite": []string{s.framework + "/" + s.fwVersion}})
		if _, ok := f["agents"].(map[string]any)["opentelemetry/java"]; !ok {
			t.Errorf("no OTel agent entry: %v", mustJSON(f["agents"]))
		}
		// Kibana's exact-term loop emits the EDOT and OTel names even without data.
		for _, name := range []string{"opentelemetry/java/elastic", "opentelemetry/dotnet/elastic", "opentelemetry/nodejs/elastic",
			"opentelemetry/php/elastic", "opentelemetry/python/elastic", "opentelemetry/java/opentelemetry-java-instrumentation"} {
			if _, ok := f["agents"].(map[string]any)[name]; !ok {
				t.Errorf("agents.%s missing", name)
			}
		}
	})

	t.Run("per_service", func(t *testing.T) {
		f, warnings := run(t, telemetry.PerService())
		items := f["per_service"].([]any)
		want := map[string]int{}
		hour := d.filter(func(x doc) bool { return x.event == "transaction" && d.now.Sub(x.ts) < time.Hour && x.svc.env != "" })
		for _, x := range hour {
			want[shaHex(x.svc.env)+"~"+shaHex(x.svc.name)] = distinct(d.filter(func(y doc) bool {
				return y.event == "transaction" && d.now.Sub(y.ts) < time.Hour && y.svc.name == x.svc.name && y.svc.env == x.svc.env
			}), func(y doc) string { return str(y.src, "service", "node", "name") })
		}
		if len(items) != len(want) {
			t.Fatalf("%d per_service items, want %d: %s", len(items), len(want), mustJSON(items))
		}
		for _, it := range items {
			m := it.(map[string]any)
			nodes, ok := want[m["service_id"].(string)]
			if !ok {
				t.Errorf("unexpected service_id %v", m["service_id"])
				continue
			}
			eq(t, "num_service_nodes", m["num_service_nodes"], nodes)
			eq(t, "num_transaction_types", m["num_transaction_types"], 1)
			if m["agent"].(map[string]any)["name"] == nil {
				t.Errorf("no sampled agent name: %s", mustJSON(m))
			}
		}
		// Neither test engine has top_metrics: the task samples with top_hits and says so.
		if len(warnings) != 1 || !strings.Contains(warnings[0], "top_metrics") {
			t.Errorf("warnings %v", warnings)
		}
	})

	t.Run("indices_stats", func(t *testing.T) {
		f, _ := run(t, telemetry.IndicesStats())
		ms := f["indices"].(map[string]any)["metric"].(map[string]any)["metricset"].(map[string]any)
		count := func(name, interval string) int {
			return len(d.filter(func(x doc) bool {
				return str(x.src, "metricset", "name") == name && str(x.src, "metricset", "interval") == interval
			}))
		}
		eq(t, "transaction-1m.all.docs", ms["transaction-1m"].(map[string]any)["all"].(map[string]any)["total"].(map[string]any)["docs"], map[string]int{"count": count("transaction", "1m")})
		eq(t, "transaction-1m.1d", ms["transaction-1m"].(map[string]any)["1d"], map[string]int{"doc_count": count("transaction", "1m")})
		eq(t, "service_summary-10m.1d", ms["service_summary-10m"].(map[string]any)["1d"], map[string]int{"doc_count": count("service_summary", "10m")})
		eq(t, "app.1d", ms["app"].(map[string]any)["1d"], map[string]int{"doc_count": count("app", "")})
		eq(t, "span_breakdown-60m.1d", ms["span_breakdown-60m"].(map[string]any)["1d"], map[string]int{"doc_count": 0})
		docs := f["indices"].(map[string]any)["all"].(map[string]any)["total"].(map[string]any)["docs"].(map[string]any)["count"]
		eq(t, "indices.all.docs", docs, len(d.docs)+len(d.configs))
	})

	t.Run("global_labels", func(t *testing.T) {
		f, _ := run(t, telemetry.GlobalLabels())
		eq(t, "global_labels", f["counts"], map[string]any{"global_labels": map[string]int{"1d": 2}})
	})

	t.Run("integrations", func(t *testing.T) {
		// Neither test engine has the _ml API: 0 jobs and a warning (Elasticsearch's
		// answer is covered by the documented fixture in TestIntegrations).
		f, warnings := run(t, telemetry.Integrations())
		eq(t, "integrations", f, map[string]any{"integrations": map[string]any{"ml": map[string]int{"all_jobs_count": 0}}})
		if len(warnings) != 1 {
			t.Errorf("warnings %v", warnings)
		}
	})

	t.Run("service_groups and custom_dashboards", func(t *testing.T) {
		f, warnings := run(t, telemetry.ServiceGroups())
		eq(t, "service_groups", f, map[string]any{"service_groups": map[string]any{
			"kuery_fields": []string{"service.name", "agent.name", "labels.team", "service.environment"}, "total": len(d.groups)}})
		if len(warnings) != 1 || !strings.Contains(warnings[0], "apm-service-group:2") {
			t.Errorf("warnings %v", warnings)
		}
		f, _ = run(t, telemetry.CustomDashboards())
		eq(t, "custom_dashboards", f, map[string]any{"custom_dashboards": map[string]any{"kuery_fields": []string{}, "total": 1}})
	})

	t.Run("per_agent_config_settings", func(t *testing.T) {
		f, _ := run(t, telemetry.PerAgentConfigSettings())
		items := f["per_agent_config_settings"].([]any)
		got := make([]string, len(items))
		for i, it := range items {
			got[i] = mustJSON(it)
		}
		sort.Strings(got)
		want := []string{
			`{"advanced_settings":["my_key"],"agent_name":"java","has_error":false,"settings":["capture_body"]}`,
			`{"advanced_settings":[],"agent_name":"opentelemetry/java/elastic","has_error":true,"settings":["logging_level"]}`,
			`{"advanced_settings":[],"has_error":false,"settings":["transaction_sample_rate"]}`,
		}
		sort.Strings(want)
		eq(t, "per_agent_config_settings", got, want)
	})
}

func topTerms(docs []doc, f func(doc) string) []string {
	values := make([]string, len(docs))
	for i, x := range docs {
		values[i] = f(x)
	}
	return testenv.TopTerms(values)
}

var _ = config.Default
