package uploader_test

// Integration: Describe against each test engine (OpenSearch behind the
// product-header proxy, Elasticsearch 8.19 from Maven Central), Document, and an upload into a telemetry
// index created with the schema's strict mapping; the stored document is
// read back and checked field by field.

import (
	"context"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/internal/uploader"
)

func TestUploadFullEnvelope(t *testing.T) { testenv.Engines(t, uploadFullEnvelope) }

func uploadFullEnvelope(t *testing.T, engine testenv.Engine) {
	c := engine.Client(t)
	p := testenv.Prefix(t, c)
	ctx := context.Background()
	do := func(r es.Request) []byte {
		t.Helper()
		r.Timeout = time.Minute
		b, err := c.Do(ctx, r)
		if err != nil {
			t.Fatalf("%s %s: %v", r.Method, r.Path(), err)
		}
		return b
	}
	// Kibana's saved objects: a config object per version Kibana ran, and a dashboard.
	kibana := p + ".kibana_9.2.0_001"
	do(es.Request{Method: "PUT", Index: []string{kibana}, Body: json.RawMessage(`{"mappings":{"properties":{"type":{"type":"keyword"}}}}`)})
	for id, doc := range map[string]string{
		"config:9.1.3":    `{"type":"config","config":{"buildNum":1}}`,
		"config:9.2.0":    `{"type":"config","config":{"buildNum":2}}`,
		"dashboard:d1":    `{"type":"dashboard","dashboard":{"title":"d"}}`,
		"visualization:1": `{"type":"visualization"}`,
	} {
		do(es.Request{Method: "PUT", Index: []string{kibana}, Endpoint: "_doc/" + url.PathEscape(id), Params: url.Values{"refresh": {"true"}}, Body: json.RawMessage(doc)})
	}
	src, err := uploader.Describer{KibanaIndex: p + ".kibana*"}.Describe(ctx, c, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// Stored with the run as JSON: what is uploaded is what comes back.
	b, _ := json.Marshal(src)
	var stored uploader.Source
	if err := json.Unmarshal(b, &stored); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 10, 0, 0, 123e6, time.UTC)
	env, err := uploader.Document(stored, at, time.Now(), json.RawMessage(`{"cloud":{"provider":["aws"]},"services_per_agent":{"android/java":200},"tasks":{"cloud":{"took":{"ms":4}}}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	index := p + "xpack-phone-home"
	if what, err := uploader.SetupIndex(ctx, c, index, "strict", false); err != nil || what != "created" {
		t.Fatalf("telemetry index setup: %q %v", what, err)
	}
	id := uploader.DocID(src.ClusterUUID, "sched-20261201T000000Z")
	sink := uploader.ESSink{ES: c, Index: index, Timeout: time.Minute}
	if d, err := sink.Put(ctx, id, env); err != nil || d.State != run.UploadUploaded || d.Note != "" {
		t.Fatalf("upload into the strict mapping: %+v %v", d, err)
	}
	// Setting an existing index up again updates it in place; the document stays.
	if what, err := uploader.SetupIndex(ctx, c, index, "strict", false); err != nil || what != "mapping and settings updated" {
		t.Errorf("second telemetry index setup: %q %v", what, err)
	}
	// The same document again (a retry after a slow first attempt that the
	// engine had stored, or a re-send): the engine answers 409, and the
	// sink reads the document back and reports it delivered, not failed.
	if d, err := sink.Put(ctx, id, env); err != nil || d.State != run.UploadUploaded || d.Note != uploader.AlreadyDelivered || d.Where != index+"/"+id {
		t.Errorf("second put of %s = %+v, %v; want uploaded, %q", id, d, err, uploader.AlreadyDelivered)
	}
	var got struct {
		Source map[string]any `json:"_source"`
	}
	if err := json.Unmarshal(do(es.Request{Method: "GET", Index: []string{index}, Endpoint: "_doc/" + url.PathEscape(id)}), &got); err != nil {
		t.Fatal(err)
	}
	doc := got.Source
	at2 := func(path string) any {
		var v any = doc
		for _, k := range strings.Split(path, ".") {
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		}
		return v
	}
	// The node count as the engine reports it, read independently.
	var stats struct {
		Nodes struct {
			Count struct {
				Total float64 `json:"total"`
			} `json:"count"`
		} `json:"nodes"`
	}
	_ = json.Unmarshal(do(es.Request{Method: "GET", Endpoint: "_cluster/stats", ClusterWide: true}), &stats)
	if n, _ := at2("cluster_stats.nodes.count.total").(float64); n < 1 || n != stats.Nodes.Count.Total {
		t.Errorf("cluster_stats.nodes.count.total = %v, the engine says %v", at2("cluster_stats.nodes.count.total"), stats.Nodes.Count.Total)
	}
	if at2("cluster_stats._nodes") != nil || at2("cluster_stats.cluster_name") != nil {
		t.Error("cluster_stats not trimmed as Kibana trims it")
	}
	if usage, _ := at2("cluster_stats.nodes.usage.nodes").([]any); len(usage) == 0 {
		t.Errorf("cluster_stats.nodes.usage = %v", at2("cluster_stats.nodes.usage"))
	}
	if engine.Name == testenv.OpenSearch {
		// OpenSearch has no _license: the document has none (Kibana leaves an
		// absent license out too) and the run's Source says why.
		if doc["license"] != nil || !strings.Contains(strings.Join(src.Missing, "|"), "license:") {
			t.Errorf("license %v on OpenSearch; missing %q", doc["license"], src.Missing)
		}
	} else {
		// Elasticsearch's self-generated basic license, as _license?local=true gives it.
		if at2("license.type") != "basic" || at2("license.status") != "active" || at2("license.uid") == nil || len(src.Missing) != 0 {
			t.Errorf("license %v on Elasticsearch; missing %q", doc["license"], src.Missing)
		}
		if at2("version") != "8.19.21" {
			t.Errorf("version %v, want the node's 8.19.21", at2("version"))
		}
	}
	for path, want := range map[string]any{
		"collectionSource":                                   "apmtel",
		"collection":                                         "local",
		"cluster_uuid":                                       src.ClusterUUID,
		"timestamp":                                          "2026-12-01T10:00:00.123Z",
		"cacheDetails.updatedAt":                             "2026-12-01T10:00:00.123Z",
		"stack_stats.kibana.count":                           float64(1),
		"stack_stats.kibana.indices":                         float64(1),
		"stack_stats.kibana.dashboard.total":                 float64(1),
		"stack_stats.kibana.visualization.total":             float64(1),
		"stack_stats.kibana.plugins.apm.tasks.cloud.took.ms": float64(4),
		// byte as in Kibana's schema; a count past 127 is kept, not refused.
		"stack_stats.kibana.plugins.apm.services_per_agent.android/java": float64(200),
	} {
		if got := at2(path); got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	if d := cmp.Diff([]any{map[string]any{"count": float64(1), "version": "9.2.0"}}, at2("stack_stats.kibana.versions")); d != "" {
		t.Errorf("stack_stats.kibana.versions (-want +got):\n%s", d)
	}
	if !regexp.MustCompile(`^\d+\.\d+\.\d+`).MatchString(doc["version"].(string)) {
		t.Errorf("version %v", doc["version"])
	}
	// collectionSource is indexed: a consumer can filter on it.
	var hits struct {
		Hits struct {
			Total struct {
				Value int `json:"value"`
			} `json:"total"`
		} `json:"hits"`
	}
	_ = json.Unmarshal(do(es.Request{Method: "POST", Index: []string{index}, Endpoint: "_search",
		Body: map[string]any{"query": map[string]any{"term": map[string]any{"collectionSource": "apmtel"}}}}), &hits)
	if hits.Hits.Total.Value != 1 {
		t.Errorf("term collectionSource:apmtel finds %d documents", hits.Hits.Total.Value)
	}
}
