package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/kuery"
)

// savedObjectsPerPage is Kibana's page size (MAX_NUMBER_OF_SERVICE_GROUPS).
const savedObjectsPerPage = 500

// kueryFieldsOf reads up to 500 saved objects of type soType, newest first,
// from Kibana's saved-object indices and collects the field names of their
// KQL "kuery" attribute (spec §2.3.15-16). Kibana reads them through its
// saved-objects client in every space; we search the indices behind it.
// Invalid KQL in one object is a warning, not a failed task.
func kueryFieldsOf(ctx context.Context, env Env, soType, key string) (Fragment, error) {
	b, err := env.ES.Do(ctx, es.Request{
		Method:   "POST",
		Index:    []string{env.Indices.Kibana},
		Endpoint: "_search",
		Params: url.Values{"ignore_unavailable": {"true"}, "allow_no_indices": {"true"},
			"expand_wildcards": {"open,hidden"}},
		Body: map[string]any{
			"size":             savedObjectsPerPage,
			"track_total_hits": true,
			"timeout":          es.FormatTimeout(env.SearchTimeout),
			"query":            filter(term("type", soType)),
			"sort":             []any{map[string]any{"updated_at": map[string]any{"order": "desc", "unmapped_type": "date"}}},
			"_source":          []any{soType + ".kuery"},
		},
		Timeout: env.SearchTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("saved objects %s: %w", soType, err)
	}
	var res struct {
		es.Answer
		Hits struct {
			Total *struct {
				Value int64 `json:"value"`
			} `json:"total"`
			Hits []struct {
				ID     string                                 `json:"_id"`
				Source map[string]map[string]*json.RawMessage `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("saved objects %s: decode response: %w", soType, err)
	}
	if err := res.Check(env.Indices.Kibana, nil); err != nil {
		return nil, fmt.Errorf("saved objects %s: %w", soType, err)
	}
	fields := []string{}
	seen := map[string]bool{}
	for _, h := range res.Hits.Hits {
		q := ""
		if raw := h.Source[soType]["kuery"]; raw != nil {
			if err := json.Unmarshal(*raw, &q); err != nil {
				env.warn("%s %s: kuery is not a string", soType, h.ID)
				continue
			}
		}
		fs, err := kuery.Fields(q)
		if err != nil {
			env.warn("%s %s: %v", soType, h.ID, err)
			continue
		}
		for _, f := range fs {
			if !seen[f] {
				seen[f] = true
				fields = append(fields, f)
			}
		}
	}
	total := int64(0)
	if res.Hits.Total != nil {
		total = res.Hits.Total.Value
	}
	return Fragment{key: map[string]any{"kuery_fields": fields, "total": total}}, nil
}

// ServiceGroups reports the fields used by service groups' queries.
func ServiceGroups() Task {
	return Task{Name: "service_groups", Collect: func(ctx context.Context, env Env) (Fragment, error) {
		return kueryFieldsOf(ctx, env, "apm-service-group", "service_groups")
	}}
}

// CustomDashboards reports the fields used by custom dashboards' queries.
func CustomDashboards() Task {
	return Task{Name: "custom_dashboards", Collect: func(ctx context.Context, env Env) (Fragment, error) {
		return kueryFieldsOf(ctx, env, "apm-custom-dashboards", "custom_dashboards")
	}}
}
