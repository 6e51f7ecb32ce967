// Package uploader turns a finalized telemetry object into the document
// Kibana's local telemetry collection ships (cluster_stats, license,
// collectionSource, stack_stats.kibana with plugins.apm) and writes it to the
// telemetry cluster, to Kibana's telemetry channel (a JWE POST), or to a file.
//
// What the document needs from the source cluster is read by Describe once
// per run and stored with the run (Source), so an upload never touches the
// source. The document id is derived from (cluster_uuid, run id), and the
// timestamp is the run's finalize time, so a retried upload writes the same
// document again instead of adding a second one.
package uploader
