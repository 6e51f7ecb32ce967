package telemetry

// APMAppIDs are the Kibana application ids of the APM solution, the one
// place the behavioural tasks take them from. Kibana registers "apm" in
// x-pack/solutions/observability/plugins/apm/public/plugin.ts
// (core.application.register({id: 'apm'}), whose UI counters also use the
// app name 'apm') and "ux", the User Experience app built on the same RUM
// data, in .../plugins/ux/public/plugin.ts (OBLT_UX_APP_ID = 'ux' of
// @kbn/deeplinks-observability). "uptime" and "synthetics" are not APM apps.
var APMAppIDs = []string{"apm", "ux"}

// Plugins of Kibana's own collectors that the behavioural tasks fill
// (stack_stats.kibana.plugins.<name>).
const (
	PluginApplicationUsage = "application_usage"
	PluginUICounters       = "ui_counters"
)

func isAPMApp(id string) bool {
	for _, a := range APMAppIDs {
		if a == id {
			return true
		}
	}
	return false
}
