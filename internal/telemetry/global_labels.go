package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/apmtel/apmtel/internal/es"
)

// GlobalLabels counts the label fields of the last day in APM Server's
// internal metrics data streams, where global labels are part of the
// aggregation key (spec §2.3.7).
func GlobalLabels() Task {
	return Task{Name: "global_labels", Collect: func(ctx context.Context, env Env) (Fragment, error) {
		p := env.Indices.MetricsDataStreamPrefix
		var idx []string
		for _, ms := range []string{"service_summary", "service_transaction", "transaction", "service_destination"} {
			idx = append(idx, p+"metrics-apm."+ms+"*")
		}
		b, err := env.ES.Do(ctx, es.Request{
			Method:   "POST",
			Index:    idx,
			Endpoint: "_field_caps",
			Params: url.Values{"fields": {"labels.*"}, "expand_wildcards": {"all"},
				"ignore_unavailable": {"true"}, "allow_no_indices": {"true"}},
			Body:    map[string]any{"index_filter": range1d},
			Timeout: env.SearchTimeout,
		})
		if err != nil {
			return nil, fmt.Errorf("field caps %s: %w", strings.Join(idx, ","), err)
		}
		var res struct {
			Fields map[string]json.RawMessage `json:"fields"`
		}
		if err := json.Unmarshal(b, &res); err != nil {
			return nil, fmt.Errorf("field caps: decode response: %w", err)
		}
		n := len(res.Fields)
		if _, ok := res.Fields["labels"]; ok {
			n--
		}
		return Fragment{"counts": map[string]any{"global_labels": map[string]any{"1d": n}}}, nil
	}}
}
