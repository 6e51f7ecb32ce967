// Package agentnames holds the APM agent name lists of Kibana's
// @kbn/elastic-agent-utils (agent_names.ts), the vocabulary both the
// telemetry tasks (which names to query) and the payload schema (which keys
// to map) are built from. It imports nothing of apmtel, so the schema does not
// depend on the task code and the tasks' unit tests can check their output
// against the schema.
package agentnames
