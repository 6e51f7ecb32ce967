package telemetry

import (
	"context"
	"fmt"
)

// Cloud reports the cloud availability zones, providers and regions seen in
// all APM data (spec §2.3.2): all time, terms of default size 10.
func Cloud() Task {
	return Task{Name: "cloud", Collect: func(ctx context.Context, env Env) (Fragment, error) {
		r, err := env.search(ctx, env.indices("EMST"), map[string]any{
			"track_total_hits": false,
			"size":             0,
			"aggs": map[string]any{
				"availability_zone": termsOf("cloud.availability_zone", 0),
				"provider":          termsOf("cloud.provider", 0),
				"region":            termsOf("cloud.region", 0),
			},
		})
		if err != nil {
			return nil, err
		}
		out := map[string]any{}
		for _, name := range []string{"availability_zone", "provider", "region"} {
			var t termsAgg
			if _, err := r.agg(name, &t); err != nil {
				return nil, fmt.Errorf("cloud: %w", err)
			}
			out[name] = t.keys()
		}
		return Fragment{"cloud": out}, nil
	}}
}
