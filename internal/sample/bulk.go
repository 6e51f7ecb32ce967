package sample

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/apmtel/apmtel/internal/es"
)

// Doc is one document to index.
type Doc struct {
	Index  string
	ID     string
	Source map[string]any
}

// Bulk indexes docs in one request, with op_type create for documents without
// an id (data streams accept nothing else), and fails on the first item error, naming it.
func Bulk(ctx context.Context, d es.Doer, docs []Doc, refresh bool) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, doc := range docs {
		meta := map[string]any{"_index": doc.Index}
		op := "create"
		if doc.ID != "" {
			// Documents with an id go to plain indices and are replaced on a re-run.
			meta["_id"], op = doc.ID, "index"
		}
		if err := enc.Encode(map[string]any{op: meta}); err != nil {
			return err
		}
		if err := enc.Encode(doc.Source); err != nil {
			return fmt.Errorf("encode document for %s: %w", doc.Index, err)
		}
	}
	params := url.Values{}
	if refresh {
		params.Set("refresh", "true")
	}
	b, err := d.Do(ctx, es.Request{Method: "POST", Endpoint: "_bulk", ClusterWide: true, Params: params, NDJSON: buf.Bytes(), Timeout: 2 * time.Minute})
	if err != nil {
		return fmt.Errorf("bulk: %w", err)
	}
	var res struct {
		Errors bool `json:"errors"`
		Items  []map[string]struct {
			Index  string          `json:"_index"`
			Status int             `json:"status"`
			Error  json.RawMessage `json:"error"`
		} `json:"items"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("bulk: decode response: %w", err)
	}
	if !res.Errors {
		return nil
	}
	for i, item := range res.Items {
		for _, r := range item {
			if r.Status >= 400 {
				return fmt.Errorf("bulk: item %d (%s) failed with status %d: %s", i, r.Index, r.Status, r.Error)
			}
		}
	}
	return fmt.Errorf("bulk: errors reported without a failed item")
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
