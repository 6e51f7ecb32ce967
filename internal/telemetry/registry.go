package telemetry

import (
	"fmt"
	"strings"
)

// Registry is an ordered, immutable set of tasks.
type Registry struct {
	tasks []Task
	index map[string]int
}

// NewRegistry returns a registry of tasks in the given order; names must be unique.
func NewRegistry(tasks ...Task) (*Registry, error) {
	r := &Registry{index: map[string]int{}}
	for _, t := range tasks {
		if t.Name == "" || t.Collect == nil {
			return nil, fmt.Errorf("task %q: name and Collect are required", t.Name)
		}
		if _, dup := r.index[t.Name]; dup {
			return nil, fmt.Errorf("task %q registered twice", t.Name)
		}
		r.index[t.Name] = len(r.tasks)
		r.tasks = append(r.tasks, t)
	}
	return r, nil
}

// Default returns every telemetry task: the 19 data tasks in the execution
// order of current Kibana (spec §2.2, with per_agent_config_settings 7th as
// in tasks.ts 030822b0), then the behavioural tasks, whose objects go to
// other plugins of the same document (docs/behavioral.md).
// A new task is one file plus one line here.
func Default() *Registry {
	r, err := NewRegistry(
		AggregatedTransactions(),
		Cloud(),
		Host(),
		Environments(),
		ProcessorEvents(),
		AgentConfiguration(),
		PerAgentConfigSettings(),
		GlobalLabels(),
		Services(),
		Versions(),
		Groupings(),
		Integrations(),
		Agents(),
		IndicesStats(),
		Cardinality(),
		ServiceGroups(),
		CustomDashboards(),
		PerService(),
		TopTraces(),
		// Behavioural telemetry, after the data tasks.
		ApplicationUsage(),
		UICounters(),
	)
	if err != nil {
		panic(err)
	}
	return r
}

// All returns the tasks in order.
func (r *Registry) All() []Task { return append([]Task(nil), r.tasks...) }

// Names returns the task names in order.
func (r *Registry) Names() []string {
	out := make([]string, len(r.tasks))
	for i, t := range r.tasks {
		out[i] = t.Name
	}
	return out
}

// NamesOf returns the names of the tasks whose fragments go to plugin, in order.
func (r *Registry) NamesOf(plugin string) []string {
	var out []string
	for _, t := range r.tasks {
		if t.PluginName() == plugin {
			out = append(out, t.Name)
		}
	}
	return out
}

// PluginOf returns the plugin of the task called name; a name the registry
// does not know (a task of an older release still in a run's record) is
// the APM object's, where every task used to go.
func (r *Registry) PluginOf(name string) string {
	if t, ok := r.Lookup(name); ok {
		return t.PluginName()
	}
	return PluginAPM
}

// Lookup returns the task called name.
func (r *Registry) Lookup(name string) (Task, bool) {
	i, ok := r.index[name]
	if !ok {
		return Task{}, false
	}
	return r.tasks[i], true
}

// Select returns the named tasks in registry order, or every task when names
// is empty; an unknown name is an error that lists the known ones.
func (r *Registry) Select(names []string) ([]Task, error) {
	if len(names) == 0 {
		return r.All(), nil
	}
	want := map[string]bool{}
	var unknown []string
	for _, n := range names {
		if _, ok := r.index[n]; !ok {
			unknown = append(unknown, n)
		}
		want[n] = true
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown telemetry task %s (known: %s)", strings.Join(unknown, ", "), strings.Join(r.Names(), ", "))
	}
	var out []Task
	for _, t := range r.tasks {
		if want[t.Name] {
			out = append(out, t)
		}
	}
	return out, nil
}
