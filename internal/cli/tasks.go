package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/apmtel/apmtel/internal/telemetry"
)

// taskSummaries say in one line what each task collects (docs/parity.md and
// docs/behavioral.md have the details); TestEveryTaskHasASummary holds
// them to the registry.
var taskSummaries = map[string]string{
	"aggregated_transactions":   "transactions per service: counts of aggregated vs. raw transaction documents",
	"cloud":                     "cloud providers, regions and availability zones the agents report",
	"host":                      "host operating systems the agents run on",
	"environments":              "service environments: how many, and services without one",
	"processor_events":          "document counts per event type, and the oldest of each",
	"agent_configuration":       "how many agent central configurations exist",
	"per_agent_config_settings": "which central-configuration settings are used, per agent",
	"global_labels":             "how many global labels the agents set",
	"services":                  "how many services, and services per agent",
	"versions":                  "APM Server versions that wrote the data",
	"groupings":                 "cardinality of transaction names, errors and services",
	"integrations":              "the machine-learning jobs on APM data",
	"agents":                    "agent versions, frameworks, languages and runtimes per agent",
	"indices_stats":             "size, documents and shards of the APM indices",
	"cardinality":               "cardinality of user agents and transaction names",
	"service_groups":            "how many service groups exist",
	"custom_dashboards":         "how many custom dashboards are linked to services",
	"per_service":               "one row per service: agent, cloud, runtime, framework",
	"top_traces":                "how many spans the largest traces have (max, median)",
	"application_usage":         "APM app page views and time on page (Kibana's application_usage)",
	"ui_counters":               "APM app UI clicks and counters (Kibana's ui_counters)",
}

// tasksOpts are tasks's own flags.
type tasksOpts struct{ asJSON bool }

func tasksCommand() command {
	o := &tasksOpts{}
	return command{name: "tasks", summary: "list the telemetry tasks in execution order, with what each collects",
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&o.asJSON, "json", false, "print one JSON array: name, order, plugin, behavioural, summary")
		},
		run: func(e *env, _ []string) error { return runTasks(e, o) }}
}

func runTasks(e *env, o *tasksOpts) error {
	all := telemetry.Default().All()
	if o.asJSON {
		type task struct {
			Name        string `json:"name"`
			Order       int    `json:"order"`
			Plugin      string `json:"plugin"`
			Behavioural bool   `json:"behavioural"`
			Summary     string `json:"summary"`
		}
		out := make([]task, len(all))
		for i, t := range all {
			out[i] = task{t.Name, i + 1, t.PluginName(), t.PluginName() != telemetry.PluginAPM, taskSummaries[t.Name]}
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := newTable(e.stdout)
	for _, t := range all {
		mark := ""
		if t.PluginName() != telemetry.PluginAPM {
			mark = "[behavioural: " + t.PluginName() + "]"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, taskSummaries[t.Name], mark)
	}
	return tw.Flush()
}
