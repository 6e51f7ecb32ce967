package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/apmtel/apmtel/internal/es"
)

// scrolled is what a scroll saw besides the hits.
type scrolled struct {
	// Read counts the hits handed to each.
	Read int64
	// Total is hits.total of the first page (body track_total_hits).
	Total int64
}

// scroll reads every hit of a search through the scroll API, pageSize per
// page (body must ask for that size), and always releases the scroll
// context. A scroll is the one way to read a whole result set that works
// alike on every Elasticsearch and OpenSearch version without a sortable
// unique field (point-in-time APIs differ; sorting on _id is refused by
// Elasticsearch 8). A partial page (es.Answer.Check) fails the scroll.
func scroll(ctx context.Context, env Env, indices []string, params url.Values, body map[string]any, pageSize int,
	each func(id string, src json.RawMessage) error) (scrolled, error) {
	keepAlive := es.FormatTimeout(max(env.SearchTimeout, time.Minute))
	name := strings.Join(indices, ",")
	q := url.Values{"scroll": {keepAlive}}
	for k, v := range params {
		q[k] = v
	}
	var st scrolled
	b, err := env.ES.Do(ctx, es.Request{Method: "POST", Index: indices, Endpoint: "_search", Params: q, Body: body, Timeout: env.SearchTimeout})
	if err != nil {
		return st, fmt.Errorf("search %s: %w", name, err)
	}
	var scrollID string
	defer func() {
		if scrollID != "" {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_, _ = env.ES.Do(cctx, es.Request{Method: "DELETE", Endpoint: "_search/scroll", ClusterWide: true,
				Body: map[string]any{"scroll_id": scrollID}, Timeout: 10 * time.Second})
		}
	}()
	for first := true; ; first = false {
		var page struct {
			es.Answer
			ScrollID string `json:"_scroll_id"`
			Hits     struct {
				Total *struct {
					Value int64 `json:"value"`
				} `json:"total"`
				Hits []struct {
					ID     string          `json:"_id"`
					Source json.RawMessage `json:"_source"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return st, fmt.Errorf("search %s: decode response: %w", name, err)
		}
		if page.ScrollID != "" {
			scrollID = page.ScrollID
		}
		var asked map[string]any
		if first {
			asked = body
		}
		if err := page.Check(name, asked); err != nil {
			return st, err
		}
		if first && page.Hits.Total != nil {
			st.Total = page.Hits.Total.Value
		}
		for _, h := range page.Hits.Hits {
			st.Read++
			if err := each(h.ID, h.Source); err != nil {
				return st, err
			}
		}
		if len(page.Hits.Hits) < pageSize || scrollID == "" {
			return st, nil
		}
		b, err = env.ES.Do(ctx, es.Request{Method: "POST", Endpoint: "_search/scroll", ClusterWide: true,
			Body: map[string]any{"scroll": keepAlive, "scroll_id": scrollID}, Timeout: env.SearchTimeout})
		if err != nil {
			return st, fmt.Errorf("scroll %s: %w", name, err)
		}
	}
}

// savedObjectsPageSize is the page size of the behavioural tasks' scrolls.
const savedObjectsPageSize = 1000

// scrollSavedObjects reads every saved object that query matches in
// Kibana's saved-object indices (hidden ones included, as Kibana's
// .kibana_* system indices are), keeping only the _source fields listed.
// Kibana's collectors read them with a point-in-time finder in every space;
// a scroll is the same consistent snapshot. A scroll page lost to a retried
// request would make the counts silently low, so a read that ends short of
// the first page's total fails the task (the job is retried), as does a
// page the cluster said is partial.
func scrollSavedObjects(ctx context.Context, env Env, what string, query map[string]any, source []string,
	each func(id string, src json.RawMessage) error) error {
	params := url.Values{"ignore_unavailable": {"true"}, "allow_no_indices": {"true"}, "expand_wildcards": {"open,hidden"}}
	src := make([]any, len(source))
	for i, s := range source {
		src[i] = s
	}
	body := map[string]any{"size": savedObjectsPageSize, "track_total_hits": true, "timeout": es.FormatTimeout(env.SearchTimeout),
		"query": query, "_source": src, "sort": []any{"_doc"}}
	st, err := scroll(ctx, env, []string{env.Indices.Kibana}, params, body, savedObjectsPageSize, each)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if st.Read < st.Total {
		return fmt.Errorf("%s: read %d of %d saved objects (a scroll page was lost)", what, st.Read, st.Total)
	}
	return nil
}
