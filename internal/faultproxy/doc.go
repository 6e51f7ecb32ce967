// Package faultproxy is a test-harness reverse proxy in front of OpenSearch.
// It adds the X-Elastic-Product header that go-elasticsearch v8 requires
// (OpenSearch does not send it), counts requests in flight, and injects
// faults — delay, an HTTP status, a connection reset, a hang, an answer
// rewritten into a partial or huge one — on request,
// for the fault suite. It is never placed in front of a real Elasticsearch.
package faultproxy
