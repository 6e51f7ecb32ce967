package telemetry

import (
	"slices"
	"strings"
)

// Agent central-configuration setting definitions, as data: each key with
// the agents it is limited to (include) or not offered for (exclude).
//
// Mirrors Kibana's common/agent_configuration/setting_definitions
// (general_settings, java_settings, mobile_settings, edot_sdk_settings) as of
// the per_agent_config_settings task's introduction (Kibana 9.2, tasks.ts
// 030822b0; EDOT SDK settings at 4009f51d), with the EDOT-aware "All agents"
// rule of setting_definitions/index.ts 82ab9ad2. Update the table and this
// note together when following a newer Kibana.
type settingDefinition struct {
	key     string
	include []string
	exclude []string
}

var (
	rumMobile = []string{"js-base", "rum-js", "android/java", "iOS/swift"}
	edot      = edotAgentNames
	javaOnly  = []string{"java"}
)

func excl(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

var settingDefinitions = func() []settingDefinition {
	defs := []settingDefinition{
		// general_settings
		{key: "api_request_size", exclude: excl([]string{"js-base", "rum-js", "dotnet", "go", "nodejs", "php", "android/java", "iOS/swift"}, edot)},
		{key: "api_request_time", exclude: excl([]string{"js-base", "rum-js", "dotnet", "go", "nodejs", "php", "android/java", "iOS/swift"}, edot)},
		{key: "capture_body", exclude: excl([]string{"js-base", "rum-js", "php", "android/java", "iOS/swift"}, edot)},
		{key: "capture_body_content_types", include: []string{"java", "dotnet"}},
		{key: "capture_headers", exclude: excl([]string{"js-base", "rum-js", "nodejs", "php", "android/java", "iOS/swift"}, edot)},
		{key: "dedot_custom_metrics", include: javaOnly},
		{key: "disable_instrumentations", include: javaOnly},
		{key: "disable_outgoing_tracecontext_headers", include: javaOnly},
		{key: "log_ecs_reformatting", include: javaOnly},
		{key: "mongodb_capture_statement_commands", include: javaOnly},
		{key: "context_propagation_only", include: javaOnly},
		{key: "server_timeout", include: javaOnly},
		{key: "transaction_ignore_user_agents", include: javaOnly},
		{key: "exit_span_min_duration", include: []string{"java", "dotnet", "nodejs", "python"}},
		{key: "span_stack_trace_min_duration", include: []string{"java", "dotnet", "nodejs", "python"}},
		{key: "ignore_message_queues", include: []string{"java", "dotnet", "nodejs"}},
		{key: "log_level", include: []string{"dotnet", "ruby", "java", "python", "nodejs", "go", "php"}},
		{key: "recording", exclude: excl([]string{"nodejs", "rum-js", "js-base"}, edot)},
		{key: "span_compression_enabled", include: []string{"java", "dotnet", "python"}},
		{key: "span_compression_exact_match_max_duration", include: []string{"java", "dotnet", "python"}},
		{key: "span_compression_same_kind_max_duration", include: []string{"java", "dotnet", "python"}},
		{key: "span_frames_min_duration", exclude: excl([]string{"js-base", "rum-js", "nodejs", "php", "android/java", "iOS/swift"}, edot)},
		{key: "stack_trace_limit", include: []string{"java", "dotnet", "go", "python"}},
		{key: "trace_continuation_strategy", include: []string{"java", "nodejs", "python"}},
		{key: "transaction_max_spans", exclude: excl(rumMobile, edot)},
		{key: "transaction_sample_rate", exclude: excl([]string{"android/java", "iOS/swift"}, edot)},
		{key: "sanitize_field_names", include: []string{"java", "python", "go", "dotnet", "nodejs", "ruby"}},
		{key: "transaction_ignore_urls", include: []string{"java", "nodejs", "python", "dotnet", "ruby", "go"}},
		{key: "use_path_as_transaction_name", include: []string{"java", "dotnet"}},
		{key: "transaction_name_groups", include: []string{"java", "dotnet"}},
		// mobile_settings
		{key: "session_sample_rate", include: []string{"iOS/swift", "android/java"}},
		// edot_sdk_settings
		{key: "deactivate_instrumentations", include: []string{"opentelemetry/java/elastic", "opentelemetry/nodejs/elastic"}},
		{key: "deactivate_all_instrumentations", include: []string{"opentelemetry/java/elastic", "opentelemetry/nodejs/elastic"}},
		{key: "logging_level", include: edot},
		{key: "send_traces", include: []string{"opentelemetry/java/elastic"}},
		{key: "send_metrics", include: []string{"opentelemetry/java/elastic"}},
		{key: "send_logs", include: []string{"opentelemetry/java/elastic"}},
	}
	// java_settings
	for _, k := range []string{"application_packages", "enable_log_correlation", "circuit_breaker_enabled",
		"enable_experimental_instrumentations", "enable_instrumentations", "log_sending", "span_min_duration",
		"stress_monitor_gc_stress_threshold", "stress_monitor_gc_relief_threshold", "stress_monitor_cpu_duration_threshold",
		"stress_monitor_system_cpu_stress_threshold", "stress_monitor_system_cpu_relief_threshold",
		"profiling_inferred_spans_enabled", "profiling_inferred_spans_sampling_interval", "profiling_inferred_spans_min_duration",
		"profiling_inferred_spans_included_classes", "profiling_inferred_spans_excluded_classes",
		"capture_jmx_metrics", "ignore_exceptions", "trace_methods", "unnest_exceptions"} {
		defs = append(defs, settingDefinition{key: k, include: javaOnly})
	}
	return defs
}()

// ignoredForAllAgents reports whether an excluded agent does not stop a
// definition from applying to an "All agents" configuration: RUM, mobile
// (ios/swift case-insensitively) and EDOT agents.
func ignoredForAllAgents(name string) bool {
	return slices.Contains(rumAgentNames, name) || strings.EqualFold(name, "ios/swift") || name == "android/java" || slices.Contains(edot, name)
}

// knownSettingKeys returns the predefined setting keys of agentName ("" for
// all agents), Kibana's filterByAgent.
func knownSettingKeys(agentName string) map[string]bool {
	out := map[string]bool{}
	for _, d := range settingDefinitions {
		var applies bool
		switch {
		case agentName == "":
			if d.include != nil {
				continue
			}
			applies = true
			for _, x := range d.exclude {
				if !ignoredForAllAgents(x) {
					applies = false
					break
				}
			}
		case slices.Contains(d.include, agentName):
			applies = true
		case d.exclude != nil:
			applies = !slices.Contains(d.exclude, agentName)
		default:
			applies = d.include == nil
		}
		if applies {
			out[d.key] = true
		}
	}
	return out
}
