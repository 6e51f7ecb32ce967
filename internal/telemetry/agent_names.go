package telemetry

// Agent name lists of @kbn/elastic-agent-utils (spec §2.1).

// elasticAgentNames are the Elastic APM agents.
var elasticAgentNames = []string{"dotnet", "go", "iOS/swift", "java", "js-base", "nodejs", "php", "python", "ruby", "rum-js", "android/java"}

// otelBaseAgentNames are the OpenTelemetry prefixes queried with a prefix match.
var otelBaseAgentNames = []string{"otlp", "opentelemetry"}

// rumAgentNames are the browser agents (cardinality task).
var rumAgentNames = []string{"js-base", "rum-js", "opentelemetry/webjs", "otlp/webjs"}

// agentNamesWithoutOTel is Kibana's AGENT_NAMES_WITHOUT_OTEL de-duplicated,
// in first-seen order: Kibana's list has 16 entries with java, js-base,
// rum-js and android/java twice; querying them twice gives the same value.
var agentNamesWithoutOTel = []string{"dotnet", "go", "iOS/swift", "java", "js-base", "nodejs", "php", "python", "ruby", "rum-js", "android/java", "ios/swift"}

// otelLanguages are the suffixes of the OTel agent names.
var otelLanguages = []string{"cpp", "dotnet", "erlang", "go", "java", "nodejs", "php", "python", "ruby", "rust", "swift", "android", "webjs"}

// edotAgentNames are the Elastic Distributions of OpenTelemetry.
var edotAgentNames = []string{"opentelemetry/java/elastic", "opentelemetry/dotnet/elastic", "opentelemetry/nodejs/elastic", "opentelemetry/php/elastic", "opentelemetry/python/elastic"}

// SchemaAgentNames are the 45 agent keys of Kibana's schema (spec §3.4).
func SchemaAgentNames() []string {
	out := append([]string{}, elasticAgentNames...)
	for _, base := range otelBaseAgentNames {
		out = append(out, base)
		for _, l := range otelLanguages {
			out = append(out, base+"/"+l)
		}
	}
	out = append(out, "ios/swift")
	return append(out, edotAgentNames...)
}
