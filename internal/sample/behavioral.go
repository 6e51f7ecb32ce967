package sample

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// behavioralDays is how far back the sample's application usage goes: past
// Kibana's 90-day window, so the totals differ from clicks_90_days (Kibana
// would have rolled those days into a totals object; the collector counts
// both alike).
const behavioralDays = 120

// appViews are the tracked views of the sample, "main" being the app itself.
var appViews = map[string][]string{
	"apm": {"main", "services", "traces", "service-map", "dependencies"},
	"ux":  {"main"},
}

// behavioralObjects returns Kibana saved objects of the APM apps'
// behavioural telemetry as Kibana's usage_collection plugin writes them:
// application_usage_daily per app, view and day (most days of the last 120,
// some skipped), application_usage_totals of earlier rollups, and
// usage-counter objects of UI counters over the last 5 days (Kibana keeps
// them that long), one of them in a second space, plus objects the tasks
// must ignore (another app, a server-side counter, a zero count).
func behavioralObjects(index string, o Options) []Doc {
	r := rand.New(rand.NewPCG(uint64(o.Seed), 0x5eed))
	day0 := o.Now.UTC().Truncate(24 * time.Hour)
	var docs []Doc
	for _, app := range []string{"apm", "ux"} {
		for vi, view := range appViews[app] {
			for d := 0; d < behavioralDays; d++ {
				if r.IntN(4) == 0 { // no visit that day
					continue
				}
				day := day0.AddDate(0, 0, -d)
				clicks := r.IntN(40) + 1
				if view != "main" {
					clicks = clicks/(vi+1) + 1
				}
				id := fmt.Sprintf("%s:%s", app, day.Format("2006-01-02"))
				if view != "main" {
					id += ":" + view
				}
				docs = append(docs, Doc{Index: index, ID: "application_usage_daily:" + id, Source: map[string]any{
					"type": "application_usage_daily", "updated_at": day.Add(20 * time.Hour).Format(time.RFC3339Nano),
					"application_usage_daily": map[string]any{"appId": app, "viewId": view, "timestamp": day.Format("2006-01-02T15:04:05.000Z"),
						"numberOfClicks": clicks, "minutesOnScreen": float64(r.IntN(1200)) / 40}, // quarter-minute steps
				}})
			}
		}
	}
	for _, t := range []struct {
		id, app, view   string
		clicks, minutes float64
	}{{"apm", "apm", "main", 4200, 1830.5}, {"apm___services", "apm", "services", 1300, 610.25}, {"ux", "ux", "main", 150, 45}} {
		docs = append(docs, Doc{Index: index, ID: "application_usage_totals:" + t.id, Source: map[string]any{
			"type": "application_usage_totals", "updated_at": day0.AddDate(0, 0, -behavioralDays).Format(time.RFC3339Nano),
			"application_usage_totals": map[string]any{"appId": t.app, "viewId": t.view, "numberOfClicks": t.clicks, "minutesOnScreen": t.minutes},
		}})
	}
	docs = append(docs, Doc{Index: index, ID: "application_usage_daily:discover:" + day0.Format("2006-01-02"), Source: map[string]any{
		"type": "application_usage_daily", "updated_at": o.Now.UTC().Format(time.RFC3339Nano),
		"application_usage_daily": map[string]any{"appId": "discover", "viewId": "main", "timestamp": day0.Format("2006-01-02T15:04:05.000Z"), "numberOfClicks": 99, "minutesOnScreen": 9},
	}})
	counters := []struct{ app, name, typ, source string }{
		{"apm", "side_nav_dependency", "click", "ui"}, {"apm", "service_map_open", "click", "ui"},
		{"apm", "transaction_details_loaded", "loaded", "ui"}, {"ux", "ux_dashboard_viewed", "count", "ui"},
		{"apm", "get_services", "count", "server"}, {"discover", "open_doc", "click", "ui"},
	}
	for d := 0; d < 5; d++ {
		day := day0.AddDate(0, 0, -d)
		for _, c := range counters {
			at := day.Add(time.Duration(r.IntN(24*60)) * time.Minute)
			if at.After(o.Now) { // today's counters were updated before now
				at = o.Now
			}
			key := fmt.Sprintf("%s:%s:%s:%s:%s", c.app, c.name, c.typ, c.source, day.Format("20060102"))
			src := map[string]any{"type": "usage-counter", "updated_at": at.UTC().Format(time.RFC3339Nano), "namespaces": []string{"default"},
				"usage-counter": map[string]any{"domainId": c.app, "counterName": c.name, "counterType": c.typ, "source": c.source, "count": r.IntN(20) + 1}}
			docs = append(docs, Doc{Index: index, ID: "usage-counter:" + key, Source: src})
		}
	}
	// The same counter and day in a second space: Kibana adds them up.
	docs = append(docs, Doc{Index: index, ID: "observability:usage-counter:apm:side_nav_dependency:click:ui:" + day0.Format("20060102"), Source: map[string]any{
		"type": "usage-counter", "namespace": "observability", "updated_at": o.Now.UTC().Format(time.RFC3339Nano),
		"usage-counter": map[string]any{"domainId": "apm", "counterName": "side_nav_dependency", "counterType": "click", "source": "ui", "count": 3},
	}}, Doc{Index: index, ID: "usage-counter:apm:service_map_open:loaded:ui:" + day0.Format("20060102"), Source: map[string]any{
		"type": "usage-counter", "updated_at": o.Now.UTC().Format(time.RFC3339Nano),
		"usage-counter": map[string]any{"domainId": "apm", "counterName": "service_map_open", "counterType": "loaded", "source": "ui", "count": 0},
	}})
	return docs
}
