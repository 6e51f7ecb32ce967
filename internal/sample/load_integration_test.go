package sample_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/sample"
	"github.com/apmtel/apmtel/internal/testenv"
)

func count(t *testing.T, c *es.Client, index string) int {
	t.Helper()
	b, err := c.Do(context.Background(), es.Request{Method: "GET", Index: []string{index}, Endpoint: "_count",
		Params: url.Values{"expand_wildcards": {"all"}}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var r struct{ Count int }
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r.Count
}

// Load writes exactly the documents it counts, into the data streams it names,
// searchable when it returns (one refresh at the end).
func TestLoadWritesEveryDocument(t *testing.T) { testenv.Engines(t, loadWritesEveryDocument) }

func loadWritesEveryDocument(t *testing.T, engine testenv.Engine) {
	c := engine.Client(t)
	p := testenv.Prefix(t, c)
	st, err := sample.Load(context.Background(), c, sample.Options{Services: 5, Days: 2, Docs: 2500, Seed: 4, Bulk: 300, Prefix: p})
	if err != nil {
		t.Fatal(err)
	}
	if st.Docs != 2500 {
		t.Fatalf("stats count %d documents, want 2500", st.Docs)
	}
	var sum int
	for index, n := range st.ByIndex {
		if got := count(t, c, index); got != n {
			t.Errorf("%s holds %d documents, the loader wrote %d", index, got, n)
		}
		sum += n
	}
	if sum != 2500 || len(st.ByIndex) < 8 {
		t.Errorf("%d documents in %d indices: %v", sum, len(st.ByIndex), st.ByIndex)
	}
}

// A document the engine refuses fails the bulk with a message naming how many
// failed and why; the others of the same request are still written. The
// engines name the refusal differently (docs/parity.md).
var refusedDocument = map[string]string{
	testenv.OpenSearch:    "mapper_parsing_exception",
	testenv.Elasticsearch: "document_parsing_exception",
}

func TestBulkNamesRefusedDocuments(t *testing.T) { testenv.Engines(t, bulkNamesRefusedDocuments) }

func bulkNamesRefusedDocuments(t *testing.T, engine testenv.Engine) {
	c := engine.Client(t)
	p := testenv.Prefix(t, c)
	index := p + "plain"
	if err := sample.PutPlainIndex(context.Background(), c, index); err != nil {
		t.Fatal(err)
	}
	docs := []sample.Doc{
		{Index: index, ID: "a", Source: map[string]any{"n": map[string]any{"x": "1"}}},
		{Index: index, ID: "b", Raw: []byte(`{"n":"not an object"}`)},
		{Index: index, ID: "c", Raw: []byte(`{"m":"fine"}`)},
	}
	err := sample.Bulk(context.Background(), c, docs[:1], true)
	if err != nil {
		t.Fatal(err)
	}
	err = sample.Bulk(context.Background(), c, docs[1:], true)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 documents failed") || !strings.Contains(err.Error(), refusedDocument[engine.Name]) {
		t.Fatalf("err = %v, want one of two refused with the engine's reason", err)
	}
	if got := count(t, c, index); got != 2 {
		t.Fatalf("%d documents in %s, want the 2 accepted ones", got, index)
	}
}
