package telemetry

import "github.com/apmtel/apmtel/internal/agentnames"

// Agent name lists of @kbn/elastic-agent-utils (spec §2.1, corrected to
// Kibana's current lists), kept in internal/agentnames so the schema can use
// them without importing the tasks.
var (
	// otelBaseAgentNames are the OpenTelemetry prefixes queried with a prefix match.
	otelBaseAgentNames = agentnames.OTelBase
	// rumAgentNames are the browser agents (cardinality task).
	rumAgentNames = agentnames.RUM
	// agentNamesWithoutOTel are the names of the exact-term loops (services,
	// agents): 18 distinct names, each always emitted.
	agentNamesWithoutOTel = agentnames.WithoutOTel
	// edotAgentNames are the Elastic Distributions of OpenTelemetry.
	edotAgentNames = agentnames.EDOT
)
