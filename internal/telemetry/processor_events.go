package telemetry

import (
	"context"
	"fmt"
	"time"
)

// processorEvents are the event kinds in Kibana's order, with their index kind.
var processorEvents = []struct {
	name string
	kind string
}{
	{"error", "E"}, {"metric", "M"}, {"span", "S"}, {"transaction", "T"}, {"onboarding", "O"},
}

// ProcessorEvents counts documents per processor.event over the last day and
// all time, and measures the age of the oldest document (spec §2.3.5).
// Kibana asks for 10 documents in the retainment query; one is enough.
func ProcessorEvents() Task {
	return Task{Name: "processor_events", Collect: func(ctx context.Context, env Env) (Fragment, error) {
		out := Fragment{}
		for _, ev := range processorEvents {
			idx := env.indices(ev.kind)
			for _, rng := range []string{"1d", "all"} {
				q := filter(term("processor.event", ev.name))
				if rng == "1d" {
					q = filter(term("processor.event", ev.name), range1d)
				}
				r, err := env.search(ctx, idx, map[string]any{"size": 0, "track_total_hits": true, "query": q})
				if err != nil {
					return nil, fmt.Errorf("count %s %s: %w", ev.name, rng, err)
				}
				set(out, []string{"counts", ev.name, rng}, r.total())
			}
			r, err := env.search(ctx, idx, map[string]any{
				"track_total_hits": false,
				"size":             1,
				"query":            filter(term("processor.event", ev.name)),
				"sort":             map[string]any{"@timestamp": "asc"},
				"fields":           []any{"@timestamp"},
			})
			if err != nil {
				return nil, fmt.Errorf("retainment %s: %w", ev.name, err)
			}
			if len(r.Hits.Hits) == 0 {
				continue
			}
			ts, err := firstTimestamp(r.Hits.Hits[0].Fields)
			if err != nil {
				// Kibana omits the retainment of a hit without @timestamp
				// and keeps the counts; so do we, with a warning.
				env.warn("retainment %s left out: %v", ev.name, err)
				continue
			}
			set(out, []string{"retainment", ev.name, "ms"}, env.Now().Sub(ts).Milliseconds())
		}
		return out, nil
	}}
}

// firstTimestamp parses fields["@timestamp"][0], a date string or epoch millis.
func firstTimestamp(fields map[string][]any) (time.Time, error) {
	vs := fields["@timestamp"]
	if len(vs) == 0 {
		return time.Time{}, fmt.Errorf("hit has no @timestamp field")
	}
	switch v := vs[0].(type) {
	case string:
		ts, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return time.Time{}, fmt.Errorf("parse @timestamp %q: %w", v, err)
		}
		return ts, nil
	case float64:
		return time.UnixMilli(int64(v)), nil
	default:
		return time.Time{}, fmt.Errorf("@timestamp has unexpected type %T", v)
	}
}
