// Package faultproxy is a test-harness reverse proxy in front of OpenSearch.
// It adds the X-Elastic-Product header that go-elasticsearch v8 requires
// (OpenSearch does not send it), counts requests in flight, and injects
// faults — delay, an HTTP status, a connection reset, a hang, an answer
// rewritten into a partial or huge one — on request,
// for the fault suite. It is never placed in front of a real Elasticsearch.
//
// For fleet tests and benchmarks it also serves virtual clusters (Fleet):
// N loopback ports in front of one engine, each answering GET / and
// _cluster/stats with a name and cluster_uuid of its own and counting its
// own requests in flight, so a per-cluster cap is checked at each
// cluster's door. A Tape records one run's answers and a Replayer serves
// them again after a delay, so a thousand clusters cost the proxy, not the
// engine.
package faultproxy
