package telemetry

// Merge deep-merges src into dst (objects recursively; any other value of
// src replaces dst's), as lodash merge does for the disjoint fragments Kibana
// combines. It returns dst.
func Merge(dst, src map[string]any) map[string]any {
	if dst == nil {
		dst = map[string]any{}
	}
	for k, sv := range src {
		sm, sIsMap := sv.(map[string]any)
		dm, dIsMap := dst[k].(map[string]any)
		if sIsMap && dIsMap {
			dst[k] = Merge(dm, sm)
			continue
		}
		if sIsMap {
			dst[k] = Merge(map[string]any{}, sm)
			continue
		}
		dst[k] = sv
	}
	return dst
}

// WithTook adds tasks.<name>.took.ms to f, Kibana's record of a successful task.
func WithTook(f Fragment, name string, tookMS int64) Fragment {
	return Merge(f, map[string]any{"tasks": map[string]any{name: map[string]any{"took": map[string]any{"ms": tookMS}}}})
}
