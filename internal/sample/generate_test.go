package sample

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// doc returns document i on its own (the loader uses appendDoc).
func (g *generator) doc(i int) Doc {
	index, raw := g.appendDoc(nil, i)
	return Doc{Index: index, Raw: raw}
}

func newGen(seed int64) *generator {
	r := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	o := Options{Services: 9, Days: 3, Now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	return &generator{r: r, o: o, services: newServices(r, o.Services)}
}

func TestGeneratorIsDeterministicAndRealistic(t *testing.T) {
	a, b := newGen(7), newGen(7)
	events := map[string]int{}
	agents := map[string]bool{}
	for i := 0; i < 2000; i++ {
		da, db := a.doc(i), b.doc(i)
		if da.Index != db.Index || !bytes.Equal(da.Raw, db.Raw) {
			t.Fatalf("doc %d differs between runs with the same seed", i)
		}
		src := decode(t, da.Raw)
		ev := src["processor"].(map[string]any)["event"].(string)
		events[ev]++
		agents[src["agent"].(map[string]any)["name"].(string)] = true
		ts, err := time.Parse(time.RFC3339Nano, src["@timestamp"].(string))
		if err != nil || ts.After(a.o.Now) || ts.Before(a.o.Now.Add(-72*time.Hour)) {
			t.Fatalf("doc %d timestamp %v outside the 3 days: %v", i, ts, err)
		}
	}
	for _, ev := range []string{"transaction", "span", "error", "metric"} {
		if events[ev] < 50 {
			t.Errorf("only %d %s documents in 2000", events[ev], ev)
		}
	}
	if len(agents) != 9 {
		t.Errorf("%d agents, want 9", len(agents))
	}
	if c := newGen(8).doc(0); bytes.Equal(c.Raw, newGen(7).doc(0).Raw) {
		t.Error("different seeds gave the same document")
	}
}

func decode(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("document is not JSON: %v\n%s", err, raw)
	}
	return m
}

// Every kind of document carries the fields the telemetry tasks aggregate on,
// and each index gets the events that belong in it.
func TestGeneratedDocumentsByKind(t *testing.T) {
	g := newGen(3)
	seen := map[string]bool{}
	created := map[string]bool{}
	for _, n := range dataStreams("", g.services) {
		created[n] = true
	}
	for i := 0; i < 5000; i++ {
		d := g.doc(i)
		if !created[d.Index] {
			t.Fatalf("doc %d goes to %s, which the loader does not create up front", i, d.Index)
		}
		src := decode(t, d.Raw)
		ev := src["processor"].(map[string]any)["event"].(string)
		svc := src["service"].(map[string]any)
		if svc["name"] == "" || src["agent"].(map[string]any)["version"] == "" || src["cloud"].(map[string]any)["availability_zone"] == "" {
			t.Fatalf("doc %d lacks service, agent or cloud fields: %s", i, d.Raw)
		}
		var want string
		switch ev {
		case "transaction":
			want = "traces-apm-default"
			tx := src["transaction"].(map[string]any)
			if len(tx["id"].(string)) != 16 || len(src["trace"].(map[string]any)["id"].(string)) != 32 || !strings.HasPrefix(tx["name"].(string), "GET /api/") {
				t.Fatalf("transaction %d: %s", i, d.Raw)
			}
		case "span":
			want = "traces-apm-default"
			if src["span"].(map[string]any)["destination"].(map[string]any)["service"].(map[string]any)["resource"] == "" {
				t.Fatalf("span %d: %s", i, d.Raw)
			}
		case "error":
			want = "logs-apm.error-default"
			if len(src["error"].(map[string]any)["grouping_key"].(string)) != 2 {
				t.Fatalf("error %d: %s", i, d.Raw)
			}
		case "metric":
			ms := src["metricset"].(map[string]any)
			switch ms["name"] {
			case "app":
				want = "metrics-apm.app." + svc["name"].(string) + "-default"
			case "span_breakdown":
				want = "metrics-apm.internal-default"
			default:
				want = "metrics-apm." + ms["name"].(string) + "." + ms["interval"].(string) + "-default"
			}
		}
		if d.Index != want {
			t.Fatalf("%s document %d went to %s, want %s", ev, i, d.Index, want)
		}
		seen[ev+" "+d.Index] = true
	}
	if len(seen) < 10 {
		t.Errorf("only %d event/index pairs: %v", len(seen), seen)
	}
}

// A bulk body is one action line and one source line per document, in order.
func TestBulkBodyLines(t *testing.T) {
	b := appendAction(nil, "traces-apm-default", "")
	b = appendAction(b, `we"ird`, "id\n1")
	want := `{"create":{"_index":"traces-apm-default"}}` + "\n" + `{"index":{"_index":"we\"ird","_id":"id\n1"}}` + "\n"
	if string(b) != want {
		t.Fatalf("got %q\nwant %q", b, want)
	}
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "tab\tnl\ncr\r", "\x00\x1f", "é ü 日本", "bad\xffutf8", "<html>&"} {
		got := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q: %s is not JSON: %v", s, got, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("%q round-trips to %q, encoding/json to %q", s, back, wantBack)
		}
	}
}

// BenchmarkGenerate measures document generation alone (no indexing).
func BenchmarkGenerate(b *testing.B) {
	g := newGen(1)
	b.ReportAllocs()
	var buf []byte
	for i := 0; b.Loop(); i++ {
		_, buf = g.appendDoc(buf[:0], i)
	}
}

// The behavioural sample spans 120 days (some outside Kibana's 90-day
// window), several views, UI counters of the last 5 days, and is the same
// for the same seed.
func TestBehavioralObjects(t *testing.T) {
	o := Options{Seed: 3, Now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	a, b := behavioralObjects("ix", o), behavioralObjects("ix", o)
	if len(a) != len(b) || len(a) < 300 {
		t.Fatalf("%d / %d objects", len(a), len(b))
	}
	views := map[string]bool{}
	var oldest, outside90, counters int
	for i, d := range a {
		if d.ID != b[i].ID {
			t.Fatalf("object %d differs between runs with the same seed", i)
		}
		switch d.Source["type"] {
		case "application_usage_daily":
			attrs := d.Source["application_usage_daily"].(map[string]any)
			views[attrs["appId"].(string)+"/"+attrs["viewId"].(string)] = true
			ts, err := time.Parse(time.RFC3339, attrs["timestamp"].(string))
			if err != nil || ts.After(o.Now) {
				t.Fatalf("timestamp %v: %v", attrs["timestamp"], err)
			}
			age := int(o.Now.Sub(ts).Hours() / 24)
			oldest = max(oldest, age)
			if age > 90 {
				outside90++
			}
		case "usage-counter":
			counters++
			at, _ := time.Parse(time.RFC3339Nano, d.Source["updated_at"].(string))
			if at.After(o.Now) || o.Now.Sub(at) > 5*24*time.Hour {
				t.Errorf("counter %s updated at %v", d.ID, at)
			}
		}
	}
	if len(views) != 7 || oldest < 115 || outside90 < 20 || counters < 25 {
		t.Errorf("views %v, oldest %d days, %d outside 90 days, %d counters", views, oldest, outside90, counters)
	}
}

// What each agent reports about itself is what that agent really sends:
// Java's activation methods only on Java, .NET's only on .NET, none on Go,
// RUM and OpenTelemetry; a framework and runtime only where the agent has one.
func TestAgentsReportPlausibleActivationFrameworkRuntime(t *testing.T) {
	activations := map[string][]string{
		"java":   {"javaagent-flag", "apm-agent-attach-cli", "k8s-attach"},
		"nodejs": {"require", "import", "preload"},
		"python": {"wrapper", "k8s-attach", "aws-lambda-layer"},
		"ruby":   {"require", "k8s-attach"},
		"dotnet": {"profiler", "nuget", "startup-hook"},
	}
	runtimes := map[string]string{"java": "Java", "nodejs": "node", "python": "CPython", "go": "gc", "ruby": "ruby", "dotnet": ".NET",
		"opentelemetry/java": "OpenJDK Runtime Environment", "otlp/python": "CPython"}
	seen := map[string]map[string]bool{}
	// Five services per agent: methods vary by service.
	g := newGen(3)
	g.services = newServices(g.r, 45)
	for i := 0; i < 3000; i++ {
		src := decode(t, g.doc(i).Raw)
		agent := src["agent"].(map[string]any)
		name := agent["name"].(string)
		method, hasMethod := agent["activation_method"].(string)
		svc := src["service"].(map[string]any)
		runtime, _ := svc["runtime"].(map[string]any)
		_, hasFramework := svc["framework"]
		switch allowed, ok := activations[name]; {
		case ok && !slices.Contains(allowed, method):
			t.Fatalf("%s reports activation method %q", name, method)
		case !ok && hasMethod:
			t.Fatalf("%s reports activation method %q; it reports none", name, method)
		}
		if want := runtimes[name]; want == "" && runtime != nil || want != "" && (runtime == nil || runtime["name"] != want) {
			t.Fatalf("%s reports runtime %v, want %q", name, runtime, want)
		}
		if hasFramework != (name != "rum-js" && !strings.Contains(name, "/")) {
			t.Fatalf("%s: framework present %v", name, hasFramework)
		}
		if seen[name] == nil {
			seen[name] = map[string]bool{}
		}
		seen[name][method] = true
	}
	// More than one method per agent that has several, so the sample shows the spread.
	for name, allowed := range activations {
		if len(allowed) > 1 && len(seen[name]) < 2 {
			t.Errorf("%s: only %v in 3000 documents", name, seen[name])
		}
	}
}
