package telemetry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/sample"
	"github.com/apmtel/apmtel/internal/schema"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/internal/testenv"
)

// appUsageObj is one application usage saved object the test writes.
type appUsageObj struct {
	total           bool // application_usage_totals, else daily
	app, view       string
	age             int // days before today (UTC midnight); daily only
	clicks, minutes float64
}

// uiCounterObj is one usage-counter saved object the test writes.
type uiCounterObj struct {
	space, app, name, typ, source string
	at                            time.Time
	count                         int
}

// TestBehavioralTasksAgainstSearchEngine writes Kibana's saved objects into
// indices mapped as Kibana maps them (application usage attributes not
// indexed, usage counters in their own index) and checks both tasks'
// objects against values counted here from the objects written: windows of
// 7/30/90 days and the totals, objects outside every window, other apps
// and sources ignored, more objects than one scroll page.
func TestBehavioralTasksAgainstSearchEngine(t *testing.T) {
	testenv.Engines(t, behavioralTasksAgainstSearchEngine)
}

func behavioralTasksAgainstSearchEngine(t *testing.T, engine testenv.Engine) {
	c := engine.Client(t)
	p := testenv.Prefix(t, c)
	ctx := context.Background()
	now := time.Now().UTC()
	today := now.Truncate(24 * time.Hour)

	var usage []appUsageObj
	usage = append(usage,
		appUsageObj{total: true, app: "apm", view: "main", clicks: 900, minutes: 400.5},
		appUsageObj{total: true, app: "apm", view: "traces", clicks: 90, minutes: 30},
		appUsageObj{total: true, app: "discover", view: "main", clicks: 5000, minutes: 1})
	for _, age := range []int{0, 3, 6, 7, 8, 15, 29, 30, 31, 60, 89, 90, 91, 100, 119} {
		usage = append(usage, appUsageObj{app: "apm", view: "main", age: age, clicks: float64(age + 1), minutes: float64(age) / 4})
		if age%2 == 1 {
			usage = append(usage, appUsageObj{app: "apm", view: "traces", age: age, clicks: 2, minutes: 0.5})
		}
		if age < 40 {
			usage = append(usage, appUsageObj{app: "apm", view: "service-map", age: age, clicks: 1, minutes: 0.25})
		}
	}
	usage = append(usage, appUsageObj{app: "ux", view: "main", age: 1, clicks: 12, minutes: 3.5},
		appUsageObj{app: "ux", view: "main", age: 95, clicks: 4, minutes: 1})
	// An APM view without a main entry of its app: Kibana leaves it out.
	usage = append(usage, appUsageObj{app: "apm-orphan", view: "x", age: 1, clicks: 1})
	// Other apps, more than one scroll page of them.
	for i := 0; i < 1100; i++ {
		usage = append(usage, appUsageObj{app: "dashboards", view: fmt.Sprint("v", i%20), age: i % 91, clicks: 1, minutes: 1})
	}

	var counters []uiCounterObj
	for d := 0; d < 5; d++ {
		day := today.AddDate(0, 0, -d)
		counters = append(counters,
			uiCounterObj{"default", "apm", "side_nav_dependency", "click", "ui", day.Add(9 * time.Hour), d + 1},
			uiCounterObj{"default", "apm", "service_map_open", "loaded", "ui", day.Add(10 * time.Hour), 2 * (d + 1)},
			uiCounterObj{"default", "ux", "page_view", "count", "ui", day.Add(11 * time.Hour), 7},
			uiCounterObj{"default", "apm", "api_call", "count", "server", day.Add(9 * time.Hour), 100},
			uiCounterObj{"default", "discover", "open", "click", "ui", day.Add(9 * time.Hour), 100})
	}
	counters = append(counters,
		uiCounterObj{"space-b", "apm", "side_nav_dependency", "click", "ui", today.Add(10 * time.Hour), 3},
		uiCounterObj{"default", "apm", "zero", "click", "ui", today.Add(time.Hour), 0})
	for i := range counters { // nothing after the clock of the run
		if counters[i].at.After(now) {
			counters[i].at = now
		}
	}

	// Indices mapped as Kibana's: the attributes of application usage are
	// not indexed (dynamic false), usage counters' are.
	soIndex, counterIndex := p+".kibana_9.2.0_001", p+".kibana_usage_counters_9.2.0_001"
	for ix, mapping := range map[string]string{
		soIndex: `{"mappings":{"dynamic":"strict","properties":{"type":{"type":"keyword"},"updated_at":{"type":"date"},"namespaces":{"type":"keyword"},
			"application_usage_totals":{"dynamic":false,"properties":{}},
			"application_usage_daily":{"dynamic":false,"properties":{"timestamp":{"type":"date"}}}}}}`,
		counterIndex: `{"mappings":{"dynamic":"strict","properties":{"type":{"type":"keyword"},"updated_at":{"type":"date"},"namespace":{"type":"keyword"},"namespaces":{"type":"keyword"},
			"usage-counter":{"dynamic":false,"properties":{"domainId":{"type":"keyword"},"counterName":{"type":"keyword"},"counterType":{"type":"keyword"},"source":{"type":"keyword"},"count":{"type":"integer"}}}}}}`,
	} {
		if _, err := c.Do(ctx, es.Request{Method: "PUT", Index: []string{ix}, Body: json.RawMessage(mapping), Timeout: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	var docs []sample.Doc
	for i, u := range usage {
		typ, attrs := "application_usage_daily", map[string]any{"appId": u.app, "viewId": u.view, "numberOfClicks": u.clicks, "minutesOnScreen": u.minutes}
		if u.total {
			typ = "application_usage_totals"
		} else {
			attrs["timestamp"] = today.AddDate(0, 0, -u.age).Format("2006-01-02T15:04:05.000Z")
		}
		if u.view == "main" && i%3 == 0 && !u.total {
			delete(attrs, "viewId") // objects of Kibana before views: the main view
		}
		docs = append(docs, sample.Doc{Index: soIndex, ID: fmt.Sprintf("%s:%d", typ, i), Source: map[string]any{"type": typ, "updated_at": now.Format(time.RFC3339Nano), typ: attrs}})
	}
	for i, u := range counters {
		src := map[string]any{"type": "usage-counter", "updated_at": u.at.Format(time.RFC3339Nano),
			"usage-counter": map[string]any{"domainId": u.app, "counterName": u.name, "counterType": u.typ, "source": u.source, "count": u.count}}
		id := fmt.Sprintf("usage-counter:%d", i)
		if u.space != "default" {
			src["namespace"], id = u.space, u.space+":"+id
		}
		docs = append(docs, sample.Doc{Index: counterIndex, ID: id, Source: src})
	}
	if err := sample.Bulk(ctx, c, docs, true); err != nil {
		t.Fatal(err)
	}

	env := telemetry.Env{ES: c, Indices: testenv.Indices(p), SearchTimeout: 30 * time.Second, Now: func() time.Time { return now }}
	collect := func(task telemetry.Task) map[string]any {
		t.Helper()
		var warnings []string
		e := env
		e.Warn = func(m string) { warnings = append(warnings, m) }
		f, err := task.Collect(ctx, e)
		if err != nil {
			t.Fatalf("%s: %v", task.Name, err)
		}
		if len(warnings) > 0 {
			t.Errorf("%s warnings: %q", task.Name, warnings)
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(mustJSON(f)), &m)
		if probs := schema.ValidatePlugin(task.Plugin, m); len(probs) > 0 {
			t.Errorf("%s outside its schema: %v", task.Name, schema.Summary(probs))
		}
		return m
	}

	t.Run("application_usage", func(t *testing.T) {
		got := collect(telemetry.ApplicationUsage())
		// Counted from the objects written: a daily object is in the N-day
		// window when its day is at or after now minus N days.
		type sums struct{ c, m [4]float64 } // total, 7, 30, 90
		want := map[[2]string]*sums{}
		for _, u := range usage {
			if u.app != "apm" && u.app != "ux" {
				continue
			}
			k := [2]string{u.app, u.view}
			if want[k] == nil {
				want[k] = &sums{}
			}
			s := want[k]
			s.c[0] += u.clicks
			s.m[0] += u.minutes
			if u.total {
				continue
			}
			day := today.AddDate(0, 0, -u.age)
			for i, n := range []int{7, 30, 90} {
				if !day.Before(now.AddDate(0, 0, -n)) {
					s.c[i+1] += u.clicks
					s.m[i+1] += u.minutes
				}
			}
		}
		entry := func(app, view string) map[string]any {
			s := want[[2]string{app, view}]
			return map[string]any{"appId": app, "viewId": view,
				"clicks_total": s.c[0], "clicks_7_days": s.c[1], "clicks_30_days": s.c[2], "clicks_90_days": s.c[3],
				"minutes_on_screen_total": s.m[0], "minutes_on_screen_7_days": s.m[1], "minutes_on_screen_30_days": s.m[2], "minutes_on_screen_90_days": s.m[3]}
		}
		apm := entry("apm", "main")
		apm["views"] = []any{entry("apm", "service-map"), entry("apm", "traces")}
		ux := entry("ux", "main")
		ux["views"] = []any{}
		wantObj := map[string]any{"apm": apm, "ux": ux}
		if g, w := mustJSON(got), mustJSON(wantObj); g != w {
			t.Errorf("application_usage\n got  %s\n want %s", g, w)
		}
		// The 100- and 119-day-old objects count in the total only; the
		// 91-day-old one too.
		if a := got["apm"].(map[string]any); a["clicks_total"].(float64) <= a["clicks_90_days"].(float64)+900 {
			t.Errorf("objects outside every window are missing from the total: %v", a)
		}
	})

	t.Run("ui_counters", func(t *testing.T) {
		got := collect(telemetry.UICounters())
		type key struct{ app, name, typ, day string }
		sum := map[key]int{}
		last := map[key]time.Time{}
		for _, u := range counters {
			if u.source != "ui" || u.count < 1 || (u.app != "apm" && u.app != "ux") {
				continue
			}
			k := key{u.app, u.name, u.typ, u.at.Truncate(24 * time.Hour).Format("2006-01-02T15:04:05Z")}
			sum[k] += u.count
			if u.at.After(last[k]) {
				last[k] = u.at
			}
		}
		var keys []key
		for k := range sum {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			a, b := keys[i], keys[j]
			if a.app != b.app {
				return a.app < b.app
			}
			if a.name != b.name {
				return a.name < b.name
			}
			if a.typ != b.typ {
				return a.typ < b.typ
			}
			return a.day < b.day
		})
		var events []any
		for _, k := range keys {
			events = append(events, map[string]any{"appName": k.app, "eventName": k.name, "counterType": k.typ,
				"lastUpdatedAt": last[k].Format(time.RFC3339Nano), "fromTimestamp": k.day, "total": sum[k]})
		}
		if g, w := mustJSON(got), mustJSON(map[string]any{"dailyEvents": events}); g != w {
			t.Errorf("ui_counters\n got  %s\n want %s", g, w)
		}
		if len(events) != 15 {
			t.Errorf("%d daily events, want 3 counters × 5 days", len(events))
		}
	})
}

// The demo data of `apmtel sample apm` gives non-zero behavioural telemetry
// for the APM app (what `apmtel preview --envelope` shows).
func TestSampleGivesBehavioralTelemetry(t *testing.T) {
	testenv.Engines(t, sampleGivesBehavioralTelemetry)
}

func sampleGivesBehavioralTelemetry(t *testing.T, engine testenv.Engine) {
	c := engine.Client(t)
	p := testenv.Prefix(t, c)
	now := time.Now()
	if _, err := sample.Load(context.Background(), c, sample.Options{Services: 2, Days: 1, Docs: 50, Seed: 1, Prefix: p, Now: now}); err != nil {
		t.Fatal(err)
	}
	env := telemetry.Env{ES: c, Indices: testenv.Indices(p), SearchTimeout: 30 * time.Second, Now: func() time.Time { return now }}
	au, err := telemetry.ApplicationUsage().Collect(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	apm, _ := au["apm"].(map[string]any)
	if apm == nil || apm["clicks_7_days"].(float64) <= 0 || apm["clicks_total"].(float64) <= apm["clicks_90_days"].(float64) ||
		len(apm["views"].([]any)) != 4 || au["ux"] == nil || au["discover"] != nil {
		t.Errorf("application_usage of the sample: %s", mustJSON(au))
	}
	uc, err := telemetry.UICounters().Collect(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(uc["dailyEvents"].([]any)); n < 15 {
		t.Errorf("%d daily events in the sample: %s", n, mustJSON(uc))
	}
}
