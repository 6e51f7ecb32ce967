package schema

import (
	"sort"
)

// Integer is Kibana's "integer" leaf type (ui_counters' total).
const Integer = "integer"

// BehavioralApps are the APM app ids whose application usage apmtel
// reports; equal to telemetry.APMAppIDs (a unit test of internal/telemetry
// holds them so, as for TaskNames).
var BehavioralApps = []string{"apm", "ux"}

// appUsageView is Kibana's commonSchema of application_usage
// (kibana_usage_collection/server/collectors/application_usage/schema.ts)
// without views: the fields of the main view and of each other view.
func appUsageView(what string) []any {
	return []any{
		"appId", keyword("The application being tracked"),
		"viewId", keyword("The " + what + " being tracked (main: the application as a whole)"),
		"clicks_total", long("General number of clicks in the " + what + " since we started counting them"),
		"clicks_7_days", long("General number of clicks in the " + what + " over the last 7 days"),
		"clicks_30_days", long("General number of clicks in the " + what + " over the last 30 days"),
		"clicks_90_days", long("General number of clicks in the " + what + " over the last 90 days"),
		"minutes_on_screen_total", leaf(Float, "Minutes the "+what+" is active and on-screen since we started counting them"),
		"minutes_on_screen_7_days", leaf(Float, "Minutes the "+what+" is active and on-screen over the last 7 days"),
		"minutes_on_screen_30_days", leaf(Float, "Minutes the "+what+" is active and on-screen over the last 30 days"),
		"minutes_on_screen_90_days", leaf(Float, "Minutes the "+what+" is active and on-screen over the last 90 days"),
	}
}

// ApplicationUsage returns the schema of stack_stats.kibana.plugins.application_usage
// as apmtel sends it: Kibana's per-app commonSchema for the APM apps only.
func ApplicationUsage() *Node {
	return each(BehavioralApps, func(string) *Node {
		n := obj(appUsageView("application")...)
		n.Props = append(n.Props, Prop{"views", arrayOf(obj(appUsageView("application sub view")...))})
		return n
	})
}

// UICounters returns the schema of stack_stats.kibana.plugins.ui_counters
// (kibana_usage_collection/server/collectors/ui_counters/register_ui_counters_collector.ts).
func UICounters() *Node {
	return obj("dailyEvents", arrayOf(obj(
		"appName", keyword("Name of the app reporting ui counts."),
		"eventName", keyword("Name of the event that happened."),
		"lastUpdatedAt", leaf(Date, "Time at which the metric was last updated."),
		"fromTimestamp", leaf(Date, "Time at which the metric was captured."),
		"counterType", keyword("The type of counter used."),
		"total", leaf(Integer, "The total number of times the event happened."),
	)))
}

// Plugin is one object of stack_stats.kibana.plugins that apmtel defines.
type Plugin struct {
	Name string
	// File is the committed telemetry-schema file, relative to the repository.
	File string
	Node func() *Node
}

// Plugins lists the objects apmtel sends, the APM object first.
func Plugins() []Plugin {
	return []Plugin{
		{"apm", "schema/apm.json", APM},
		{"application_usage", "schema/application_usage.json", ApplicationUsage},
		{"ui_counters", "schema/ui_counters.json", UICounters},
	}
}

func plugin(name string) (Plugin, bool) {
	for _, p := range Plugins() {
		if p.Name == name {
			return p, true
		}
	}
	return Plugin{}, false
}

// ValidatePlugin is Validate for the object of plugin name; an unknown
// plugin is one problem at its root.
func ValidatePlugin(name string, v map[string]any) []Problem {
	p, ok := plugin(name)
	if !ok {
		return []Problem{{Path: name, Kind: "unmapped"}}
	}
	var out []Problem
	validate("", p.Node(), v, &out)
	for i := range out {
		out[i].Path = join(name, out[i].Path)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
