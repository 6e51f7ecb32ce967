package collect

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/telemetry"
)

// Assemble merges the run's results, in the run's task order, into the
// telemetry object. A task that failed keeps its last good fragment when
// there is one (Kibana erases it); tasks.<name>.took.ms is written only for
// tasks that succeeded in this run, as Kibana does. A stored "ok" result that
// is not a JSON object counts as a failed task and is named in
// Report.Problems: one corrupt record never blocks a run.
func Assemble(tasks []string, results map[string]run.TaskRecord, lastGood map[string]json.RawMessage) (map[string]any, run.Report) {
	out := map[string]any{}
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
				telemetry.Merge(out, telemetry.WithTook(frag, name, rec.TookMS))
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
			telemetry.Merge(out, frag)
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
