// Package uploader turns a finalized telemetry object into the document
// Kibana's telemetry ships (stack_stats.kibana.plugins.apm inside a cluster
// envelope) and writes it to the telemetry cluster, or to a file when no
// telemetry cluster is configured.
//
// The document id is derived from (cluster_uuid, run id), and the envelope's
// timestamp is the run's finalize time, so a retried upload writes the same
// document again instead of adding a second one.
package uploader
