package testenv

import (
	"testing"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/es"
)

// Engine is one search engine the engine-facing tests run against:
// OpenSearch 2.19 behind the product-header proxy, or Elasticsearch 8.19
// started from Maven Central's jars (scripts/services.sh).
type Engine struct {
	Name string // "opensearch" or "elasticsearch": the subtest's name
	URL  string // what a client is pointed at (sends X-Elastic-Product)
}

// The engines by name, with the variable each one's URL is in.
const (
	OpenSearch    = "opensearch"
	Elasticsearch = "elasticsearch"
)

var engineEnv = []struct{ name, env string }{
	{OpenSearch, "APMTEL_TEST_ES_URL"},
	{Elasticsearch, "APMTEL_TEST_ELASTICSEARCH_URL"},
}

// Feature is something a query needs that one of the test engines lacks.
type Feature string

const (
	// Painless: Maven Central does not publish lang-painless for 8.x, so
	// the Elasticsearch test node runs no script (composite script sources,
	// bucket_script, runtime fields).
	Painless Feature = "painless"
	// TopMetrics: x-pack-analytics is not published and OpenSearch has
	// none; Elasticsearch response fixtures cover it.
	TopMetrics Feature = "top_metrics"
	// ML: the _ml API (x-pack ML is not published; OpenSearch has none).
	ML Feature = "_ml"
)

// lacks is the one list of what each test engine cannot do.
var lacks = map[string][]Feature{
	OpenSearch:    {TopMetrics, ML},
	Elasticsearch: {Painless, TopMetrics, ML},
}

// Lacks reports whether the engine cannot serve f.
func (e Engine) Lacks(f Feature) bool {
	for _, l := range lacks[e.Name] {
		if l == f {
			return true
		}
	}
	return false
}

// Need skips the test when the engine lacks f, naming both.
func (e Engine) Need(t testing.TB, f Feature) {
	t.Helper()
	if e.Lacks(f) {
		t.Skipf("the %s test node has no %s (covered by the other engine or an Elasticsearch response fixture; docs/parity.md)", e.Name, f)
	}
}

// Client returns a client for the engine.
func (e Engine) Client(t testing.TB) *es.Client {
	t.Helper()
	c, err := es.NewClient(es.ClientParams{Cluster: config.Cluster{URLs: []string{e.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Engines runs f once per test engine, each as a parallel subtest named
// after the engine. An engine whose URL is not in the environment skips its
// subtest (fails under CI=true, as every service does).
func Engines(t *testing.T, f func(t *testing.T, e Engine)) {
	t.Helper()
	for _, ee := range engineEnv {
		t.Run(ee.name, func(t *testing.T) {
			t.Parallel()
			f(t, Engine{Name: ee.name, URL: need(t, ee.env)})
		})
	}
}
