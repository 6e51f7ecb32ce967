// Package es is apmtel's only way to talk to Elasticsearch.
//
// Every request names its indices (or says it is cluster-wide), carries an
// explicit timeout, and runs under the caller's context, so that a cancelled
// job really stops its searches (Kibana's telemetry client made index and
// timeout required for the same reason: kibana#143819). Requests are plain
// values (Request) so that tests can record them as golden files.
package es
