package telemetry

import (
	"context"
)

// AgentConfiguration counts agent central-configuration documents (spec
// §2.3.6). A missing index means 0 configurations; Kibana fails the task.
func AgentConfiguration() Task {
	return Task{Name: "agent_configuration", Collect: func(ctx context.Context, env Env) (Fragment, error) {
		r, err := env.search(ctx, []string{env.Indices.AgentConfiguration}, map[string]any{"size": 0, "track_total_hits": true})
		if err != nil {
			return nil, err
		}
		return Fragment{"counts": map[string]any{"agent_configuration": map[string]any{"all": r.total()}}}, nil
	}}
}
