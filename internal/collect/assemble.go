package collect

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/telemetry"
)

// Assembled is a run's telemetry: the APM object (the snapshot,
// stack_stats.kibana.plugins.apm) and the objects of the other plugins its
// tasks fill (application_usage, ui_counters), by plugin name.
type Assembled struct {
	APM     map[string]any
	Plugins map[string]map[string]any
}

// Assemble merges the run's results, in the run's task order, into the
// telemetry object. A task that failed keeps its last good fragment when
// there is one (Kibana erases it); tasks.<name>.took.ms is written only for
// tasks that succeeded in this run, as Kibana does. A stored "ok" result that
// is not a JSON object counts as a failed task and is named in
// Report.Problems: one corrupt record never blocks a run. The fragments of
// tasks of other plugins are left out (see AssembleAll).
func Assemble(reg *telemetry.Registry, tasks []string, results map[string]run.TaskRecord, lastGood map[string]json.RawMessage) (map[string]any, run.Report) {
	a, rep := AssembleAll(reg, tasks, results, lastGood)
	return a.APM, rep
}

// AssembleAll is Assemble for every plugin: each task's fragment goes to
// its plugin's object (reg.PluginOf), the APM tasks' to the
// APM object. Only the APM object gets tasks.<name>.took.ms: Kibana's
// application_usage and ui_counters objects have no such field, and the
// took of every task stays in the report.
func AssembleAll(reg *telemetry.Registry, tasks []string, results map[string]run.TaskRecord, lastGood map[string]json.RawMessage) (Assembled, run.Report) {
	out := Assembled{APM: map[string]any{}, Plugins: map[string]map[string]any{}}
	into := func(name string) map[string]any {
		p := reg.PluginOf(name)
		if p == telemetry.PluginAPM {
			return out.APM
		}
		m, ok := out.Plugins[p]
		if !ok {
			m = map[string]any{}
			out.Plugins[p] = m
		}
		return m
	}
	rep := run.Report{Tasks: map[string]run.TaskSummary{}, Failed: []string{}, CarriedOver: []string{}}
	for _, name := range tasks {
		rec, ok := results[name]
		if !ok {
			rec = run.TaskRecord{Task: name, Status: run.TaskTimeout, Error: "no result"}
		}
		if rec.Status == run.TaskOK {
			frag, err := decodeFragment(rec.Result)
			if err == nil {
				rep.Tasks[name] = summary(rec)
				if reg.PluginOf(name) == telemetry.PluginAPM {
					frag = telemetry.WithTook(frag, name, rec.TookMS)
				}
				telemetry.Merge(into(name), frag)
				continue
			}
			msg := fmt.Sprintf("task %s: stored result is unusable: %v", name, err)
			rep.Problems = append(rep.Problems, msg)
			rec.Status, rec.Error = run.TaskFailed, msg
		}
		rep.Tasks[name] = summary(rec)
		rep.Failed = append(rep.Failed, name)
		if prev, ok := lastGood[name]; ok {
			frag, err := decodeFragment(prev)
			if err != nil {
				rep.Problems = append(rep.Problems, fmt.Sprintf("task %s: last good value is unusable: %v", name, err))
				continue
			}
			telemetry.Merge(into(name), frag)
			rep.CarriedOver = append(rep.CarriedOver, name)
		}
	}
	return out, rep
}

func summary(rec run.TaskRecord) run.TaskSummary {
	return run.TaskSummary{Status: rec.Status, TookMS: rec.TookMS, Attempt: rec.Attempt, Worker: rec.Worker, Error: rec.Error, Warnings: rec.Warnings}
}

// decodeFragment decodes a JSON object, keeping numbers exact.
func decodeFragment(b []byte) (map[string]any, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil, fmt.Errorf("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the JSON object")
	}
	return m, nil
}
