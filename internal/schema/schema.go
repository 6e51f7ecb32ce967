package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Mapping returns the telemetry-schema JSON of the APM object, formatted as
// Kibana's telemetry_check writes it (2-space indent, trailing newline).
func Mapping() []byte { return render(telemetrySchema(APM())) }

func render(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out bytes.Buffer
	_ = json.Indent(&out, b, "", "  ")
	out.WriteByte('\n')
	return out.Bytes()
}

// ESIndex returns the body that creates the telemetry index: the envelope
// of Kibana's local collection and the mapping of every object apmtel
// sends under stack_stats.kibana.plugins (apm, application_usage,
// ui_counters; Plugins). dynamic is the APM object's dynamic
// setting ("true", "false" or "strict"). The parts apmtel does not define
// (cluster_stats, the license's extra fields, other plugins, os) keep only
// the fields dashboards filter on and are otherwise dynamic false: stored in
// _source, never rejected, never a mapping explosion.
func ESIndex(dynamic string) []byte {
	props := func(pairs ...any) orderedObject {
		var p orderedObject
		for i := 0; i < len(pairs); i += 2 {
			p.add(pairs[i].(string), pairs[i+1])
		}
		return p
	}
	object := func(dyn string, pairs ...any) orderedObject {
		var o orderedObject
		if dyn != "" {
			o.add("dynamic", dyn)
		}
		o.add("properties", props(pairs...))
		return o
	}
	typed := func(t string) orderedObject {
		var o orderedObject
		o.add("type", t)
		if t == Keyword {
			o.add("ignore_above", 1024)
		}
		return o
	}
	kw, lng, date := typed(Keyword), typed(Long), typed(Date)
	total := object("", "total", lng)
	// Every object apmtel defines keeps the requested dynamic setting.
	pluginProps := []any{}
	for _, p := range Plugins() {
		var o orderedObject
		o.add("dynamic", dynamic)
		o.add("properties", esMapping(p.Node()).(orderedObject)[0].v)
		pluginProps = append(pluginProps, p.Name, o)
	}
	kibana := object("",
		"count", lng, "indices", lng,
		"versions", object("", "version", kw, "count", lng),
		"os", object("false"),
		"dashboard", total, "visualization", total, "search", total,
		"index_pattern", total, "graph_workspace", total, "timelion_sheet", total,
		"plugins", object("false", pluginProps...),
	)
	clusterStats := object("false",
		"cluster_uuid", kw, "timestamp", date, "status", kw,
		"indices", object("false", "count", lng, "docs", object("false", "count", lng)),
		"nodes", object("false", "count", object("false", "total", lng), "versions", kw),
	)
	license := object("false",
		"uid", kw, "type", kw, "status", kw, "issued_to", kw, "issuer", kw,
		"issue_date", date, "expiry_date", date, "issue_date_in_millis", lng, "expiry_date_in_millis", lng,
		"start_date_in_millis", lng, "max_nodes", lng, "max_resource_units", lng,
	)
	var mappings orderedObject
	mappings.add("dynamic", dynamic)
	mappings.add("properties", props(
		"cluster_uuid", kw, "cluster_name", kw, "timestamp", date, "version", kw,
		"cluster_stats", clusterStats, "license", license,
		"collection", kw, "collectionSource", kw,
		"cacheDetails", object("", "updatedAt", date, "fetchedAt", date),
		"stack_stats", object("", "kibana", kibana),
	))
	var settings orderedObject
	settings.add("index.mapping.total_fields.limit", 10000)
	var body orderedObject
	body.add("settings", settings)
	body.add("mappings", mappings)
	return render(body)
}

// Diff lists the paths where two telemetry-schema documents differ.
func Diff(want, got []byte) ([]string, error) {
	var a, b any
	if err := json.Unmarshal(want, &a); err != nil {
		return nil, fmt.Errorf("generated schema: %w", err)
	}
	if err := json.Unmarshal(got, &b); err != nil {
		return nil, fmt.Errorf("stored schema is not JSON: %w", err)
	}
	var out []string
	diff("", a, b, &out)
	sort.Strings(out)
	return out, nil
}

func diff(path string, a, b any, out *[]string) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		for k, av := range am {
			bv, ok := bm[k]
			if !ok {
				*out = append(*out, "missing in stored file: "+join(path, k))
				continue
			}
			diff(join(path, k), av, bv, out)
		}
		for k := range bm {
			if _, ok := am[k]; !ok {
				*out = append(*out, "not in the schema: "+join(path, k))
			}
		}
		return
	}
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	if !bytes.Equal(ab, bb) {
		*out = append(*out, fmt.Sprintf("differs: %s (schema %s, stored %s)", path, ab, bb))
	}
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// Problem is one field of a payload that does not match the schema.
type Problem struct {
	Path string `json:"path"`
	Kind string `json:"kind"` // "unmapped" or "type"
	Want string `json:"want,omitempty"`
	Got  string `json:"got,omitempty"`
}

func (p Problem) String() string {
	if p.Kind == "unmapped" {
		return p.Path + " is not in the schema"
	}
	return fmt.Sprintf("%s is %s, the schema says %s", p.Path, p.Got, p.Want)
}

// Validate checks a telemetry object (decoded JSON) against the schema and
// returns every unmapped field and type mismatch, sorted by path. Null
// values are accepted anywhere (Kibana sends null for missing samples).
func Validate(apm map[string]any) []Problem {
	var out []Problem
	validate("", APM(), apm, &out)
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	case float64, json.Number, int, int64:
		return "number"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func validate(path string, n *Node, v any, out *[]Problem) {
	if v == nil {
		return
	}
	kind := jsonKind(v)
	switch {
	case n.Items != nil:
		arr, ok := v.([]any)
		if !ok {
			*out = append(*out, Problem{Path: path, Kind: "type", Want: "array", Got: kind})
			return
		}
		for i, item := range arr {
			validate(fmt.Sprintf("%s[%d]", path, i), n.Items, item, out)
		}
	case n.Type != "":
		want := map[string]string{Long: "number", Integer: "number", Byte: "number", Float: "number", Keyword: "string", Boolean: "boolean", Date: "string"}[n.Type]
		if kind != want {
			*out = append(*out, Problem{Path: path, Kind: "type", Want: n.Type, Got: kind})
		} else if f, _ := v.(float64); n.Type == Byte && (f < -128 || f > 127 || f != float64(int(f))) {
			*out = append(*out, Problem{Path: path, Kind: "range", Want: n.Type, Got: fmt.Sprint(v)})
		}
	default:
		m, ok := v.(map[string]any)
		if !ok {
			*out = append(*out, Problem{Path: path, Kind: "type", Want: "object", Got: kind})
			return
		}
		for k, cv := range m {
			child, ok := n.Child(k)
			if !ok {
				*out = append(*out, Problem{Path: join(path, k), Kind: "unmapped"})
				continue
			}
			validate(join(path, k), child, cv, out)
		}
	}
}

// Paths lists every leaf path of the schema ("[]" marks array items).
func Paths() []string {
	var out []string
	var walk func(path string, n *Node)
	walk = func(path string, n *Node) {
		switch {
		case n.Items != nil:
			walk(path+"[]", n.Items)
		case n.Type != "":
			out = append(out, path+" ("+n.Type+")")
		default:
			for _, p := range n.Props {
				walk(join(path, p.Name), p.Node)
			}
		}
	}
	walk("", APM())
	return out
}

// Summary renders problems on one line each, for logs and run records.
func Summary(ps []Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

var _ = strings.Join
