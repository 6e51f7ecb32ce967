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
		// Three independent searches per event kind (1d count, all-time
		// count, oldest document), all sent at once under the cluster-wide
		// cap; merged in Kibana's order.
		resp := make([]*searchResponse, 3*len(processorEvents))
		err := each(ctx, len(resp), func(ctx context.Context, i int) error {
			ev := processorEvents[i/3]
			idx := env.indices(ev.kind)
			var err error
			switch i % 3 {
			case 0, 1:
				rng, q := "1d", filter(term("processor.event", ev.name), range1d)
				if i%3 == 1 {
					rng, q = "all", filter(term("processor.event", ev.name))
				}
				if resp[i], err = env.search(ctx, idx, map[string]any{"size": 0, "track_total_hits": true, "query": q}); err != nil {
					return fmt.Errorf("count %s %s: %w", ev.name, rng, err)
				}
			default:
				resp[i], err = env.search(ctx, idx, map[string]any{
					"track_total_hits": false,
					"size":             1,
					"query":            filter(term("processor.event", ev.name)),
					"sort":             map[string]any{"@timestamp": "asc"},
					"fields":           []any{"@timestamp"},
				})
				if err != nil {
					return fmt.Errorf("retainment %s: %w", ev.name, err)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		out := Fragment{}
		for e, ev := range processorEvents {
			set(out, []string{"counts", ev.name, "1d"}, resp[3*e].total())
			set(out, []string{"counts", ev.name, "all"}, resp[3*e+1].total())
			r := resp[3*e+2]
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
