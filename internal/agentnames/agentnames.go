package agentnames

// Elastic are the Elastic APM agents (ELASTIC_AGENT_NAMES).
var Elastic = []string{"dotnet", "go", "iOS/swift", "java", "js-base", "nodejs", "php", "python", "ruby", "rum-js", AndroidJava}

// AndroidJava is the one agent whose services_per_agent count Kibana's
// schema.ts types as byte rather than long.
const AndroidJava = "android/java"

// OTelBase are the OpenTelemetry prefixes (OPEN_TELEMETRY_BASE_AGENT_NAMES),
// queried with a prefix match.
var OTelBase = []string{"otlp", "opentelemetry"}

// OTelLanguages are the suffixes of OPEN_TELEMETRY_AGENT_NAMES.
var OTelLanguages = []string{"cpp", "dotnet", "erlang", "go", "java", "nodejs", "php", "python", "ruby", "rust", "swift", "android", "webjs"}

// EDOT are the Elastic Distributions of OpenTelemetry (EDOT_AGENT_NAMES).
// Kibana keeps them outside OPEN_TELEMETRY_AGENT_NAMES, so the exact-term
// loops of the services and agents tasks query them.
var EDOT = []string{"opentelemetry/java/elastic", "opentelemetry/dotnet/elastic", "opentelemetry/nodejs/elastic", "opentelemetry/php/elastic", "opentelemetry/python/elastic"}

// OTel is OTEL_AGENT_NAMES: upstream OpenTelemetry distributions Kibana
// names explicitly; like EDOT they are outside OPEN_TELEMETRY_AGENT_NAMES.
var OTel = []string{"opentelemetry/java/opentelemetry-java-instrumentation"}

// RUM are the browser agents (RUM_AGENT_NAMES, the cardinality task's filter).
var RUM = []string{"js-base", "rum-js", "opentelemetry/webjs", "otlp/webjs"}

// WithoutOTel is Kibana's AGENT_NAMES_WITHOUT_OTEL (AGENT_NAMES minus
// OPEN_TELEMETRY_AGENT_NAMES) de-duplicated in first-seen order: the 11
// Elastic names, the EDOT and OTel names, then ios/swift from IOS_AGENT_NAMES.
// Kibana's list repeats java, js-base, rum-js and android/java; querying
// them twice gives the same value, so each is queried once.
var WithoutOTel = func() []string {
	out := append([]string{}, Elastic...)
	out = append(out, EDOT...)
	out = append(out, OTel...)
	return append(out, "ios/swift")
}()

// OpenTelemetry is OPEN_TELEMETRY_AGENT_NAMES: the two base names and each
// base followed by a language.
func OpenTelemetry() []string {
	var out []string
	for _, base := range OTelBase {
		out = append(out, base)
		for _, l := range OTelLanguages {
			out = append(out, base+"/"+l)
		}
	}
	return out
}

// Schema are the agent keys of the payload schema: the 45 of Kibana's
// schema.ts (the Elastic names, the OpenTelemetry names, ios/swift, EDOT),
// then the OTel names Kibana emits but never mapped.
func Schema() []string {
	out := append([]string{}, Elastic...)
	out = append(out, OpenTelemetry()...)
	out = append(out, "ios/swift")
	out = append(out, EDOT...)
	return append(out, OTel...)
}
