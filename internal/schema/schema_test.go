package schema

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the committed plugin schema files")

// The committed schema/apm.json must be what the code generates; CI also
// runs `apmtel schema check`, which names each differing path.
func TestCommittedMappingIsCurrent(t *testing.T) {
	got, err := os.ReadFile("../../schema/apm.json")
	if err != nil {
		t.Fatal(err)
	}
	diffs, err := Diff(Mapping(), got)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 || string(got) != string(Mapping()) {
		t.Errorf("schema/apm.json is stale (run `go run ./cmd/apmtel schema check --fix`):\n%s", strings.Join(diffs, "\n"))
	}
}

// A field added to the schema but not to the committed file is reported by path.
func TestDiffNamesEachPath(t *testing.T) {
	stored := Mapping()
	n := APM()
	top, _ := n.Child("top_traces")
	top.Props = append(top.Props, Prop{"p99", long("new")})
	cnt, _ := n.Child("counts")
	cnt.Props = cnt.Props[1:] // drop counts.transaction
	diffs, err := Diff(render(telemetrySchema(n)), stored)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"missing in stored file: properties.top_traces.properties.p99",
		"not in the schema: properties.counts.properties.transaction",
	}
	if strings.Join(diffs, "|") != strings.Join(want, "|") {
		t.Errorf("diffs = %q", diffs)
	}
}

func TestValidate(t *testing.T) {
	var apm map[string]any
	_ = json.Unmarshal([]byte(`{
		"cloud": {"provider": ["aws"], "region": "not-a-list"},
		"counts": {"error": {"1d": 3, "all": "x"}},
		"services_per_agent": {"java": 1, "opentelemetry/go/elastic": 2, "android/java": 128},
		"per_service": [{"service_id": "a~b", "agent": {"name": null}, "extra": 1}],
		"aggregated_transactions": {"with_country": {"ratio": 0.5}},
		"tasks": {"cloud": {"took": {"ms": 3}}, "nosuch": {"took": {"ms": 1}}}
	}`), &apm)
	got := Summary(Validate(apm))
	want := []string{
		"cloud.region is string, the schema says array",
		"counts.error.all is string, the schema says long",
		"per_service[0].extra is not in the schema",
		"services_per_agent.android/java is 128, the schema says byte",
		"services_per_agent.opentelemetry/go/elastic is not in the schema",
		"tasks.nosuch is not in the schema",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestShape(t *testing.T) {
	count := func(path ...string) int {
		n := APM()
		for _, p := range path {
			n, _ = n.Child(p)
		}
		return len(n.Props)
	}
	for _, tc := range []struct {
		path []string
		want int
	}{
		{[]string{"services_per_agent"}, 46}, // Kibana's 45 + the OTel instrumentation name
		{[]string{"agents"}, 46},
		{[]string{"tasks"}, 19},
		{[]string{"indices", "metric", "metricset"}, 16},
		{[]string{"aggregated_transactions"}, 7},
	} {
		if got := count(tc.path...); got != tc.want {
			t.Errorf("%v has %d keys, want %d", tc.path, got, tc.want)
		}
	}
}

func TestESIndex(t *testing.T) {
	var body struct {
		Settings map[string]any `json:"settings"`
		Mappings struct {
			Dynamic    string                     `json:"dynamic"`
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"mappings"`
	}
	if err := json.Unmarshal(ESIndex("strict"), &body); err != nil {
		t.Fatal(err)
	}
	if body.Mappings.Dynamic != "strict" {
		t.Errorf("dynamic = %q", body.Mappings.Dynamic)
	}
	for _, f := range []string{"cluster_uuid", "cluster_name", "timestamp", "version", "cluster_stats", "license", "collection", "collectionSource", "cacheDetails", "stack_stats"} {
		if _, ok := body.Mappings.Properties[f]; !ok {
			t.Errorf("envelope field %s not mapped", f)
		}
	}
	s := string(ESIndex("false"))
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	var cur any = m
	for _, k := range strings.Split("mappings.properties.stack_stats.properties.kibana.properties.plugins.properties.apm.properties.environments.properties.top_environments", ".") {
		cur = cur.(map[string]any)[k]
	}
	if d := cmp.Diff(map[string]any{"ignore_above": float64(1024), "type": "keyword"}, cur); d != "" {
		t.Errorf("lists must map as their item type, keywords with ignore_above 1024 (-want +got):\n%s", d)
	}
	var apmDyn any = m
	for _, k := range strings.Split("mappings.properties.stack_stats.properties.kibana.properties.plugins.properties.apm.dynamic", ".") {
		apmDyn = apmDyn.(map[string]any)[k]
	}
	if apmDyn != "false" {
		t.Errorf("the APM object keeps the requested dynamic setting, got %v", apmDyn)
	}
	if strings.Contains(s, `"array"`) || strings.Contains(s, `"_meta"`) {
		t.Error("ES mapping must not contain telemetry-schema constructs")
	}
}

// Every plugin's committed telemetry-schema file is what the code
// generates (schema/apm.json is also checked by `apmtel schema check`).
func TestCommittedPluginMappingsAreCurrent(t *testing.T) {
	for _, p := range Plugins() {
		want, err := pluginMapping(p.Name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile("../../" + p.File)
		if *update {
			if string(got) != string(want) {
				if err := os.WriteFile("../../"+p.File, want, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v (run go test ./internal/schema -run PluginMappings -update)", err)
		}
		if string(got) != string(want) {
			diffs, _ := Diff(want, got)
			t.Errorf("%s is stale (go test ./internal/schema -run PluginMappings -update):\n%s", p.File, strings.Join(diffs, "\n"))
		}
	}
	if m, _ := pluginMapping("apm"); string(m) != string(Mapping()) {
		t.Error("the apm plugin's mapping is not Mapping()")
	}
}

func TestValidatePlugin(t *testing.T) {
	var v map[string]any
	_ = json.Unmarshal([]byte(`{"dailyEvents":[{"appName":"apm","eventName":"x","counterType":"click","lastUpdatedAt":"2026-11-26T10:00:00.000Z","fromTimestamp":"2026-11-26T00:00:00Z","total":"3","extra":1}]}`), &v)
	got := strings.Join(Summary(ValidatePlugin("ui_counters", v)), "\n")
	want := "ui_counters.dailyEvents[0].extra is not in the schema\nui_counters.dailyEvents[0].total is string, the schema says integer"
	if got != want {
		t.Errorf("problems:\n%s\nwant:\n%s", got, want)
	}
	v = nil
	_ = json.Unmarshal([]byte(`{"apm":{"appId":"apm","viewId":"main","clicks_total":3,"minutes_on_screen_total":1.5,"views":[{"appId":"apm","viewId":"services","clicks_7_days":1}]},"discover":{}}`), &v)
	if got := Summary(ValidatePlugin("application_usage", v)); strings.Join(got, "|") != "application_usage.discover is not in the schema" {
		t.Errorf("application_usage problems: %q", got)
	}
	if got := ValidatePlugin("nosuch", v); len(got) != 1 || got[0].Path != "nosuch" {
		t.Errorf("unknown plugin: %v", got)
	}
}

// pluginMapping returns the telemetry-schema JSON of plugin name (Mapping for "apm").
func pluginMapping(name string) ([]byte, error) {
	p, ok := plugin(name)
	if !ok {
		return nil, fmt.Errorf("no schema for plugin %q", name)
	}
	return render(telemetrySchema(p.Node())), nil
}
