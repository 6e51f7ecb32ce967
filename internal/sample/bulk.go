package sample

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/apmtel/apmtel/internal/es"
)

// Doc is one document to index.
type Doc struct {
	Index string
	ID    string
	// Source is encoded with encoding/json unless Raw is set.
	Source map[string]any
	// Raw is the source already encoded as one JSON object (the loader's
	// generated documents).
	Raw []byte
}

// appendAction appends a bulk action line: op_type create for documents
// without an id (data streams accept nothing else), index with one.
func appendAction(b []byte, index, id string) []byte {
	if id == "" {
		b = append(b, `{"create":{"_index":`...)
		b = appendJSONString(b, index)
		return append(b, "}}\n"...)
	}
	// Documents with an id go to plain indices and are replaced on a re-run.
	b = append(b, `{"index":{"_index":`...)
	b = appendJSONString(b, index)
	b = append(b, `,"_id":`...)
	b = appendJSONString(b, id)
	return append(b, "}}\n"...)
}

// Bulk indexes docs in one request and fails on an item error, naming it.
func Bulk(ctx context.Context, d es.Doer, docs []Doc, refresh bool) error {
	var b []byte
	for _, doc := range docs {
		b = appendAction(b, doc.Index, doc.ID)
		src := doc.Raw
		if src == nil {
			var err error
			if src, err = json.Marshal(doc.Source); err != nil {
				return fmt.Errorf("encode document for %s: %w", doc.Index, err)
			}
		}
		b = append(append(b, src...), '\n')
	}
	return BulkNDJSON(ctx, d, b, len(docs), refresh)
}

// BulkNDJSON sends a ready bulk body of n documents. The response is cut to
// the failed items (filter_path): a full one repeats every document's
// index, id and shard counts, which the engine spends CPU writing and the
// loader spends CPU reading, for nothing.
func BulkNDJSON(ctx context.Context, d es.Doer, body []byte, n int, refresh bool) error {
	params := url.Values{"filter_path": {"errors,items.*.error"}}
	if refresh {
		params.Set("refresh", "true")
	}
	b, err := d.Do(ctx, es.Request{Method: "POST", Endpoint: "_bulk", ClusterWide: true, Params: params, NDJSON: body, Timeout: 2 * time.Minute})
	if err != nil {
		return fmt.Errorf("bulk: %w", err)
	}
	var res struct {
		Errors bool `json:"errors"`
		Items  []map[string]struct {
			Error json.RawMessage `json:"error"`
		} `json:"items"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("bulk: decode response: %w", err)
	}
	if !res.Errors {
		return nil
	}
	var failed int
	var first json.RawMessage
	for _, item := range res.Items {
		for _, r := range item {
			if len(r.Error) > 0 {
				if failed == 0 {
					first = r.Error
				}
				failed++
			}
		}
	}
	if failed == 0 {
		return fmt.Errorf("bulk: errors reported without a failed item")
	}
	return fmt.Errorf("bulk: %d of %d documents failed; first: %s", failed, n, first)
}

// Refresh makes everything indexed so far searchable.
func Refresh(ctx context.Context, d es.Doer, indices ...string) error {
	_, err := d.Do(ctx, es.Request{Method: "POST", Index: indices, Endpoint: "_refresh",
		Params: url.Values{"ignore_unavailable": {"true"}, "allow_no_indices": {"true"}, "expand_wildcards": {"all"}}, Timeout: time.Minute})
	return err
}

// PutTemplates installs index templates that make the APM data streams map
// strings as keyword, as APM's own templates do for the fields queried.
func PutTemplates(ctx context.Context, d es.Doer, prefix string) error {
	dyn := []any{map[string]any{"strings_as_keyword": map[string]any{
		"match_mapping_type": "string",
		"mapping":            map[string]any{"type": "keyword", "ignore_above": 1024},
	}}}
	mappings := map[string]any{
		"dynamic_templates": dyn,
		"properties": map[string]any{
			"@timestamp":     map[string]any{"type": "date"},
			"numeric_labels": map[string]any{"type": "object"},
		},
	}
	templates := map[string][]string{
		"apmtel-sample-traces":  {prefix + "traces-apm*"},
		"apmtel-sample-logs":    {prefix + "logs-apm*"},
		"apmtel-sample-metrics": {prefix + "metrics-apm*"},
		"apmtel-sample-legacy":  {prefix + "apm-*"},
	}
	for name, patterns := range templates {
		body := map[string]any{
			"index_patterns": patterns,
			"priority":       500,
			"data_stream":    map[string]any{},
			"template": map[string]any{
				// Sample data is loaded in bulk and refreshed once at the end
				// (Load): no periodic refresh and no fsync per request while it loads.
				"settings": map[string]any{"number_of_shards": 1, "number_of_replicas": 0,
					"refresh_interval": "-1", "translog.durability": "async"},
				"mappings": mappings,
			},
		}
		if _, err := d.Do(ctx, es.Request{Method: "PUT", Endpoint: "_index_template/" + prefix + name, ClusterWide: true, Body: body, Timeout: time.Minute}); err != nil {
			return fmt.Errorf("index template %s: %w", name, err)
		}
	}
	return nil
}

// PutPlainIndex creates a keyword-mapped, non-data-stream index unless it exists.
func PutPlainIndex(ctx context.Context, d es.Doer, index string) error {
	body := map[string]any{
		"settings": map[string]any{"number_of_shards": 1, "number_of_replicas": 0},
		"mappings": map[string]any{"dynamic_templates": []any{map[string]any{"strings_as_keyword": map[string]any{
			"match_mapping_type": "string",
			"mapping":            map[string]any{"type": "keyword", "ignore_above": 1024},
		}}}},
	}
	_, err := d.Do(ctx, es.Request{Method: "PUT", Index: []string{index}, Endpoint: "", Body: body, Timeout: time.Minute})
	var e *es.Error
	if err != nil && !(asES(err, &e) && e.Type == "resource_already_exists_exception") {
		return fmt.Errorf("create index %s: %w", index, err)
	}
	return nil
}
