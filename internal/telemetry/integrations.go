package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/apmtel/apmtel/internal/es"
)

// mlJobsEndpoint lists APM's anomaly-detection jobs.
const mlJobsEndpoint = "_ml/anomaly_detectors/apm-*,*-high_mean_response_time"

// Integrations counts APM's machine-learning jobs (spec §2.3.11). Kibana
// reads body.count of an already unwrapped body and always sends 0; we send
// the real count. A cluster without the ML API (404, or a 400 for an unknown
// endpoint) has no ML jobs: 0, noted in the task's warnings.
func Integrations() Task {
	return Task{Name: "integrations", Collect: func(ctx context.Context, env Env) (Fragment, error) {
		b, err := env.ES.Do(ctx, es.Request{Method: "GET", Endpoint: mlJobsEndpoint, ClusterWide: true, Timeout: env.SearchTimeout})
		count := int64(0)
		var e *es.Error
		switch {
		case err == nil:
			var res struct {
				Count int64 `json:"count"`
			}
			if err := json.Unmarshal(b, &res); err != nil {
				return nil, fmt.Errorf("ml jobs: decode response: %w", err)
			}
			count = res.Count
		case errors.As(err, &e) && (e.Status == 404 || e.Status == 400 && strings.Contains(strings.ToLower(e.Error()), "no handler")):
			env.warn("ML API not available (%s); all_jobs_count is 0", e.Error())
		default:
			return nil, fmt.Errorf("ml jobs: %w", err)
		}
		return Fragment{"integrations": map[string]any{"ml": map[string]any{"all_jobs_count": count}}}, nil
	}}
}
