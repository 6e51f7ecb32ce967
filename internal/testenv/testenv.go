package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/es"
)

func need(t testing.TB, env string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: run the tests through scripts/test.sh", env)
		}
		t.Skipf("%s is not set: run scripts/services.sh start and source its env to run this test", env)
	}
	return v
}

// RedisAddr returns the test Redis address.
func RedisAddr(t testing.TB) string { return need(t, "APMTEL_TEST_REDIS_ADDR") }

// ESURL returns the URL of the search engine behind the product-header proxy.
func ESURL(t testing.TB) string { return need(t, "APMTEL_TEST_ES_URL") }

// OpenSearchURL returns the search engine's own URL (no header proxy), for
// tests that put a proxy of their own in front of it.
func OpenSearchURL(t testing.TB) string { return need(t, "APMTEL_TEST_OPENSEARCH_URL") }

// ES returns a client for the test search engine.
func ES(t testing.TB) *es.Client {
	t.Helper()
	c, err := es.NewClient(es.ClientParams{Cluster: config.Cluster{URLs: []string{ESURL(t)}}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Prefix returns a unique lower-case index prefix for one test, and deletes
// its indices, data streams and templates when the test ends.
func Prefix(t testing.TB, c *es.Client) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	p := "t" + hex.EncodeToString(b[:]) + "-"
	t.Cleanup(func() { ClearPrefix(c, p) })
	return p
}

// ClearPrefix deletes the data streams, indices and index templates under
// prefix p, best effort.
func ClearPrefix(c *es.Client, p string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, r := range []es.Request{
		{Method: "DELETE", Endpoint: "_data_stream/" + p + "*", ClusterWide: true, Timeout: 20 * time.Second},
		{Method: "DELETE", Index: []string{p + "*"}, Params: url.Values{"expand_wildcards": {"all"}}, Timeout: 20 * time.Second},
		{Method: "DELETE", Endpoint: "_index_template/" + p + "*", ClusterWide: true, Timeout: 20 * time.Second},
	} {
		_, _ = c.Do(ctx, r)
	}
}

// Indices returns APM index settings under prefix p, laid out as Kibana's defaults.
func Indices(p string) config.Indices {
	return config.Indices{
		Transaction:             p + "traces-apm*," + p + "apm-*",
		Span:                    p + "traces-apm*," + p + "apm-*",
		Error:                   p + "logs-apm*," + p + "apm-*",
		Metric:                  p + "metrics-apm*," + p + "apm-*",
		Onboarding:              p + "apm-*",
		AgentConfiguration:      p + ".apm-agent-configuration",
		Kibana:                  p + ".kibana*",
		MetricsDataStreamPrefix: p,
	}
}

// TopTerms orders the distinct non-empty values as a terms aggregation
// does: most frequent first, ties by key. Tests use it to compute expected
// answers from the documents they wrote.
func TopTerms(values []string) []string {
	counts := map[string]int{}
	for _, v := range values {
		if v != "" {
			counts[v]++
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}
