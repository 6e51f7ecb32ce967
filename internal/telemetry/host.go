package telemetry

import (
	"context"
	"fmt"
)

// Host reports the host OS platforms seen in all APM data (spec §2.3.3).
func Host() Task {
	return Task{Name: "host", Collect: func(ctx context.Context, env Env) (Fragment, error) {
		r, err := env.search(ctx, env.indices("EMST"), map[string]any{
			"track_total_hits": false,
			"size":             0,
			"aggs":             map[string]any{"platform": termsOf("host.os.platform", 0)},
		})
		if err != nil {
			return nil, err
		}
		var t termsAgg
		if _, err := r.agg("platform", &t); err != nil {
			return nil, fmt.Errorf("host: %w", err)
		}
		return Fragment{"host": map[string]any{"os": map[string]any{"platform": t.keys()}}}, nil
	}}
}
