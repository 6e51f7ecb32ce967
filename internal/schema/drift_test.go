package schema

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/apmtel/apmtel/internal/agentnames"
)

// Kibana's agent names as last compared (2026-12-04; the files are listed in
// docs/parity.md, "Last compared with Kibana"). When Kibana adds or drops an
// agent, update these lists from its source, then internal/agentnames, then
// `apmtel schema check --fix`: this test fails until all three agree.
var (
	// kibanaSchemaAgents are the agent keys of services_per_agent and agents
	// in schema.ts: ELASTIC_AGENT_NAMES, OPEN_TELEMETRY_AGENT_NAMES,
	// ios/swift, EDOT_AGENT_NAMES (45); apmtel adds OTEL_AGENT_NAMES, which
	// Kibana emits without mapping it.
	kibanaSchemaAgents = []string{
		"dotnet", "go", "iOS/swift", "java", "js-base", "nodejs", "php", "python", "ruby", "rum-js", "android/java",
		"otlp", "otlp/cpp", "otlp/dotnet", "otlp/erlang", "otlp/go", "otlp/java", "otlp/nodejs", "otlp/php", "otlp/python",
		"otlp/ruby", "otlp/rust", "otlp/swift", "otlp/android", "otlp/webjs",
		"opentelemetry", "opentelemetry/cpp", "opentelemetry/dotnet", "opentelemetry/erlang", "opentelemetry/go",
		"opentelemetry/java", "opentelemetry/nodejs", "opentelemetry/php", "opentelemetry/python", "opentelemetry/ruby",
		"opentelemetry/rust", "opentelemetry/swift", "opentelemetry/android", "opentelemetry/webjs",
		"ios/swift",
		"opentelemetry/java/elastic", "opentelemetry/dotnet/elastic", "opentelemetry/nodejs/elastic",
		"opentelemetry/php/elastic", "opentelemetry/python/elastic",
	}
	kibanaOTelAgents = []string{"opentelemetry/java/opentelemetry-java-instrumentation"}
	// kibanaWithoutOTel is tasks.ts' AGENT_NAMES_WITHOUT_OTEL, distinct
	// (Kibana's 22 entries repeat java, js-base, rum-js, android/java).
	kibanaWithoutOTel = []string{
		"dotnet", "go", "iOS/swift", "java", "js-base", "nodejs", "php", "python", "ruby", "rum-js", "android/java",
		"ios/swift", "opentelemetry/java/elastic", "opentelemetry/nodejs/elastic", "opentelemetry/python/elastic",
		"opentelemetry/php/elastic", "opentelemetry/dotnet/elastic", "opentelemetry/java/opentelemetry-java-instrumentation",
	}
)

func TestAgentNamesHeldToKibana(t *testing.T) {
	want := append(slices.Clone(kibanaSchemaAgents), kibanaOTelAgents...)
	keys := func(n *Node) []string {
		var out []string
		for _, p := range n.Props {
			out = append(out, p.Name)
		}
		return out
	}
	spa, _ := APM().Child("services_per_agent")
	agents, _ := APM().Child("agents")
	stored := storedKeys(t, "services_per_agent")
	for name, got := range map[string][]string{
		"agentnames.Schema()":                agentnames.Schema(),
		"schema services_per_agent":          keys(spa),
		"schema agents":                      keys(agents),
		"schema/apm.json services_per_agent": stored,
		"schema/apm.json agents":             storedKeys(t, "agents"),
	} {
		if !slices.Equal(got, want) {
			t.Errorf("%s differs from Kibana's agent keys:\n got  %q\n want %q", name, got, want)
		}
	}
	got, wantSet := slices.Sorted(slices.Values(agentnames.WithoutOTel)), slices.Sorted(slices.Values(kibanaWithoutOTel))
	if !slices.Equal(got, wantSet) {
		t.Errorf("agentnames.WithoutOTel %q, Kibana's AGENT_NAMES_WITHOUT_OTEL %q", got, wantSet)
	}
	for _, n := range append(slices.Clone(kibanaWithoutOTel), kibanaSchemaAgents...) {
		if n != strings.TrimSpace(n) || n == "" {
			t.Errorf("bad name %q", n)
		}
	}
}

// storedKeys returns the keys of properties.<field>.properties in the
// stored schema file, in file order.
func storedKeys(t *testing.T, field string) []string {
	t.Helper()
	b, err := os.ReadFile("../../schema/apm.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Properties map[string]struct {
			Properties json.RawMessage `json:"properties"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(doc.Properties[field].Properties)))
	var out []string
	if _, err := dec.Token(); err != nil {
		t.Fatalf("schema/apm.json %s: %v", field, err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
