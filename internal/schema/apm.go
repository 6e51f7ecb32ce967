package schema

import (
	"fmt"

	"github.com/apmtel/apmtel/internal/agentnames"
)

var (
	processorEvents  = []string{"transaction", "span", "error", "metric", "onboarding"}
	metricsetKeys    = []string{"service_destination-1m", "service_destination-10m", "service_destination-60m", "transaction-1m", "transaction-10m", "transaction-60m", "service_summary-1m", "service_summary-10m", "service_summary-60m", "service_transaction-1m", "service_transaction-10m", "service_transaction-60m", "span_breakdown-1m", "span_breakdown-10m", "span_breakdown-60m", "app"}
	declaredVariants = []string{"current_implementation", "no_observer_name", "no_rum", "no_rum_no_observer_name", "only_rum", "only_rum_no_observer_name"}
	producedVariants = map[string]bool{"current_implementation": true, "with_country": true, "no_observer_name": true}
)

func agentSchema(agent string) *Node {
	sub := func(what string) *Node {
		return obj(
			"name", keywords(fmt.Sprintf("The top 3 service %s names of the last day for the %s agent", what, agent)),
			"version", keywords(fmt.Sprintf("The top 3 service %s versions of the last day for the %s agent", what, agent)),
			"composite", keywords(fmt.Sprintf("The top 3 service %s name/version pairs of the last day for the %s agent", what, agent)),
		)
	}
	return obj(
		"agent", obj(
			"version", keywords("The top 3 agent versions of the last day for the "+agent+" agent"),
			"activation_method", keywords("The top 3 agent activation methods of the last day for the "+agent+" agent"),
		),
		"service", obj("framework", sub("framework"), "language", sub("language"), "runtime", sub("runtime")),
	)
}

func variantSchema(v string) *Node {
	n := obj(
		"expected_metric_document_count", long("Estimated transaction metric documents for one minute of traffic with the "+v+" aggregation key"),
		"transaction_count", long("Transactions in the one-minute window the "+v+" estimate is based on"),
	)
	if producedVariants[v] {
		n.Props = append(n.Props, Prop{"ratio", leaf(Float, "expected_metric_document_count divided by transaction_count for "+v+" (left out when not a finite number)")})
	}
	return n
}

func totals(what string) *Node {
	return obj("total", obj(
		"docs", obj("count", long("Documents in "+what+" (primaries and replicas)")),
		"store", obj("size_in_bytes", long("Size in bytes of "+what+" (primaries and replicas)")),
	))
}

func d1(desc string) *Node { return obj("1d", long(desc)) }

// TaskNames are the telemetry tasks in Kibana's execution order, the keys
// of tasks.<name>.took.ms. A unit test of internal/telemetry holds them equal
// to the task registry, so the schema needs no import of the task code.
var TaskNames = []string{
	"aggregated_transactions", "cloud", "host", "environments", "processor_events",
	"agent_configuration", "per_agent_config_settings", "global_labels", "services",
	"versions", "groupings", "integrations", "agents", "indices_stats", "cardinality",
	"service_groups", "custom_dashboards", "per_service", "top_traces",
}

// APM returns the schema of stack_stats.kibana.plugins.apm.
func APM() *Node {
	agents := agentnames.Schema()
	variants := append(append([]string{}, declaredVariants...), "with_country")
	return obj(
		"has_any_services_per_official_agent", boolean("Whether any service of an Elastic or OpenTelemetry agent reported data in the last day"),
		"has_any_services", boolean("Whether any service reported data in the last day"),
		"services_per_agent", each(agents, func(a string) *Node {
			n := long("Services of the " + a + " agent that reported data in the last day")
			if a == agentnames.AndroidJava {
				n.Type = Byte // as Kibana's schema.ts declares it
			}
			return n
		}),
		"version", obj("apm_server", obj(
			"major", long("Major version of the newest APM Server that sent data"),
			"minor", long("Minor version of the newest APM Server that sent data"),
			"patch", long("Patch version of the newest APM Server that sent data"),
		)),
		"environments", obj(
			"services_without_environment", long("Services of the last day with documents without service.environment"),
			"services_with_multiple_environments", long("Services of the last day with more than one environment"),
			"top_environments", keywords("The 5 environments with most documents in the last day"),
		),
		"aggregated_transactions", each(variants, variantSchema),
		"cloud", obj(
			"availability_zone", keywords("Cloud availability zones seen in the APM data"),
			"provider", keywords("Cloud providers seen in the APM data"),
			"region", keywords("Cloud regions seen in the APM data"),
		),
		"host", obj("os", obj("platform", keywords("Host OS platforms seen in the APM data"))),
		"counts", countsSchema(),
		// Nested, as Kibana's executor and schema.ts build it: each dot of
		// the field name is one level.
		"cardinality", obj(
			"client", obj("geo", obj("country_iso_code", obj("rum", d1("Distinct client countries of browser-agent transactions in the last day")))),
			"user_agent", obj("original", obj(
				"all_agents", d1("Distinct user agents of transactions in the last day"),
				"rum", d1("Distinct user agents of browser-agent transactions in the last day"),
			)),
			"transaction", obj("name", obj(
				"all_agents", d1("Distinct transaction names in the last day"),
				"rum", d1("Distinct transaction names of browser agents in the last day"),
			)),
		),
		"retainment", each([]string{"span", "transaction", "error", "metric", "onboarding"}, func(ev string) *Node {
			return obj("ms", long("Age in milliseconds of the oldest "+ev+" document"))
		}),
		"integrations", obj("ml", obj("all_jobs_count", long("APM anomaly-detection jobs"))),
		"agents", each(agents, agentSchema),
		"indices", obj(
			"metric", obj(
				"shards", obj("total", long("Shards of the metric indices")),
				"all", totals("the metric indices"),
				"metricset", each(metricsetKeys, func(k string) *Node {
					return obj(
						"all", obj("total", obj(
							"shards", long("Shards of the "+k+" metricset data streams"),
							"docs", obj("count", long("Documents (primaries) of the "+k+" metricset data streams")),
							"store", obj("size_in_bytes", long("Size in bytes (primaries) of the "+k+" metricset data streams")),
						)),
						"1d", obj("doc_count", long("Documents of the "+k+" metricset in the last day")),
					)
				}),
			),
			"traces", obj(
				"shards", obj("total", long("Shards of the span and transaction indices")),
				"all", totals("the span and transaction indices"),
			),
			"shards", obj("total", long("Shards of all APM indices")),
			"all", totals("all APM indices"),
		),
		"service_groups", obj(
			"kuery_fields", keywords("Fields used in the queries of the newest 500 service groups"),
			"total", long("Service groups"),
		),
		"custom_dashboards", obj(
			"kuery_fields", keywords("Fields used in the queries of the newest 500 custom dashboards"),
			"total", long("Custom dashboards"),
		),
		"per_service", arrayOf(obj(
			"service_id", keyword("sha256hex(service.environment)~sha256hex(service.name)"),
			"timed_out", boolean("Whether the per-service query timed out on some shard"),
			"num_service_nodes", long("Service instances in the last hour"),
			"num_transaction_types", long("Transaction types in the last hour"),
			"cloud", obj(
				"availability_zones", keywords("Top 5 cloud availability zones of the service"),
				"regions", keywords("Top 5 cloud regions of the service"),
				"providers", keywords("Top 3 cloud providers of the service"),
			),
			"faas", obj("trigger", obj("type", keywords("Top 5 FaaS trigger types of the service"))),
			"agent", obj(
				"name", keyword("Agent name of a sample document"),
				"version", keyword("Agent version of a sample document"),
				"activation_method", keyword("Agent activation method of a sample document"),
			),
			"service", obj(
				"language", obj("name", keyword("Language of a sample document"), "version", keyword("Language version of a sample document")),
				"framework", obj("name", keyword("Framework of a sample document"), "version", keyword("Framework version of a sample document")),
				"runtime", obj("name", keyword("Runtime of a sample document"), "version", keyword("Runtime version of a sample document")),
			),
			"kubernetes", obj("pod", obj("name", keyword("Kubernetes pod of a sample document"))),
			"container", obj("id", keyword("Container id of a sample document")),
		)),
		"per_agent_config_settings", arrayOf(obj(
			"agent_name", keyword("The name of the agent for the service"),
			"has_error", boolean("Indicates whether the agent configuration has errors"),
			"settings", keywords("The settings applied to the agent"),
			"advanced_settings", keywords("The advanced settings applied to the agent"),
		)),
		"top_traces", obj(
			"max", long("Documents of the largest trace of the last day"),
			"median", long("Median documents of the 100 largest traces of the last day"),
		),
		"tasks", each(TaskNames, func(task string) *Node {
			return obj("took", obj("ms", long(fmt.Sprintf("Execution time in milliseconds for the %q task", task))))
		}),
	)
}

func countsSchema() *Node {
	n := each(processorEvents, func(ev string) *Node {
		return obj(
			"1d", long("Documents with processor.event "+ev+" in the last day"),
			"all", long("Documents with processor.event "+ev),
		)
	})
	more := obj(
		"agent_configuration", obj("all", long("Agent central configurations")),
		"global_labels", d1("Global label fields of the last day in APM Server's aggregated metrics"),
		"max_transaction_groups_per_service", d1("Most transaction names of one service in the last day"),
		"max_error_groups_per_service", d1("Most error groups of one service in the last day"),
		"traces", obj("1d", long("Root transactions in the last day"), "all", long("Root transactions (never produced, kept from Kibana's schema)")),
		"services", d1("Services in the last day"),
		"environments", d1("Environments in the last day"),
		"span_destination_service_resource", d1("Distinct span destinations in the last day"),
	)
	n.Props = append(n.Props, more.Props...)
	return n
}
