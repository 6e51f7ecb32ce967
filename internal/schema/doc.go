// Package schema is the single source of truth for the shape of the
// telemetry object (stack_stats.kibana.plugins.apm): every field path with
// its type and description, as Kibana's apmSchema declares it (spec §3),
// plus what Kibana emits but forgot to map (aggregated_transactions
// .with_country, the ratios) and the 19th task's fields.
//
// From it come the telemetry-schema JSON that Kibana's telemetry_check
// writes (Mapping, committed as schema/apm.json and checked in CI), the
// Elasticsearch mapping of the telemetry index (ESMapping), and the check of
// every payload before upload (Validate). It imports only the agent name
// lists (internal/agentnames), never the task code, so the tasks' unit tests
// run every fragment through Validate and a task cannot emit a field the
// schema lacks.
package schema
