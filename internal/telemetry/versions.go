package telemetry

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Versions reports the newest APM Server version seen (spec §2.3.9). Kibana
// adds terminate_after:1, which picks the newest of one document per shard,
// not the newest; we sort the whole index set.
func Versions() Task {
	return Task{Name: "versions", Collect: func(ctx context.Context, env Env) (Fragment, error) {
		r, err := env.search(ctx, env.indices("TSE"), map[string]any{
			"query":            map[string]any{"exists": map[string]any{"field": "observer.version"}},
			"track_total_hits": false,
			"size":             1,
			"sort":             map[string]any{"@timestamp": "desc"},
			"fields":           []any{"observer.version"},
		})
		if err != nil {
			return nil, err
		}
		if len(r.Hits.Hits) == 0 {
			return Fragment{}, nil
		}
		vs := r.Hits.Hits[0].Fields["observer.version"]
		if len(vs) == 0 {
			return Fragment{}, nil
		}
		s, ok := vs[0].(string)
		if !ok {
			return nil, fmt.Errorf("observer.version has type %T", vs[0])
		}
		v := map[string]any{}
		for i, part := range strings.SplitN(s, ".", 3) {
			if n, ok := leadingInt(part); ok {
				v[[]string{"major", "minor", "patch"}[i]] = n
			}
		}
		return Fragment{"version": map[string]any{"apm_server": v}}, nil
	}}
}

// leadingInt reads the number at the start of s ("0-SNAPSHOT" → 0). Kibana's
// Number() gives NaN there and sends null; we keep the patch number.
func leadingInt(s string) (int64, bool) {
	end := 0
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	if end == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(s[:end], 10, 64)
	return n, err == nil
}
