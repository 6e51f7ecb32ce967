package collect

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/internal/uploader"
)

func asJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestAssemble(t *testing.T) {
	results := map[string]run.TaskRecord{
		"a": {Status: run.TaskOK, TookMS: 5, Result: json.RawMessage(`{"counts":{"error":{"1d":12345678901234567}}}`)},
		"b": {Status: run.TaskOK, TookMS: 6, Result: json.RawMessage(`{"counts":{"span":{"1d":2}}}`)},
		"c": {Status: run.TaskTimeout, Error: "slow"},
	}
	snap, rep := Assemble(telemetry.Default(), []string{"a", "b", "c", "d"}, results, map[string]json.RawMessage{"c": json.RawMessage(`{"c":true}`)})
	b, _ := json.Marshal(snap)
	want := `{"c":true,"counts":{"error":{"1d":12345678901234567},"span":{"1d":2}},"tasks":{"a":{"took":{"ms":5}},"b":{"took":{"ms":6}}}}`
	if string(b) != want {
		t.Errorf("snapshot %s\nwant     %s", b, want)
	}
	if asJSON(rep.Failed) != `["c","d"]` || asJSON(rep.CarriedOver) != `["c"]` || len(rep.Problems) != 0 {
		t.Errorf("report %+v", rep)
	}
}

// One corrupt "ok" record — invalid JSON, or valid JSON that is not an
// object — counts as a failed task whose last good value is carried over;
// it never blocks the run (issue: a run sat in "closed" until its TTL).
func TestAssembleCorruptOKRecord(t *testing.T) {
	for name, raw := range map[string]string{"invalid JSON": `{bad`, "array": `[1,2]`, "null": `null`, "string": `"x"`, "trailing": `{"a":1} {}`} {
		t.Run(name, func(t *testing.T) {
			results := map[string]run.TaskRecord{
				"a": {Status: run.TaskOK, TookMS: 5, Result: json.RawMessage(raw)},
				"b": {Status: run.TaskOK, TookMS: 6, Result: json.RawMessage(`{"b":1}`)},
			}
			snap, rep := Assemble(telemetry.Default(), []string{"a", "b"}, results, map[string]json.RawMessage{"a": json.RawMessage(`{"a":"previous"}`)})
			b, _ := json.Marshal(snap)
			if want := `{"a":"previous","b":1,"tasks":{"b":{"took":{"ms":6}}}}`; string(b) != want {
				t.Errorf("snapshot %s, want %s", b, want)
			}
			if asJSON(rep.Failed) != `["a"]` || asJSON(rep.CarriedOver) != `["a"]` || len(rep.Problems) != 1 ||
				!strings.Contains(rep.Problems[0], "task a") || rep.Tasks["a"].Status != run.TaskFailed {
				t.Errorf("report %+v", rep)
			}
		})
	}
}

// FuzzAssemble feeds arbitrary stored results to the merge: it must merge
// them or report the corrupt one, never panic, and never invent tasks.
func FuzzAssemble(f *testing.F) {
	f.Add([]byte(`{"counts":{"error":{"1d":1}}}`), []byte(`{"counts":{"span":{"1d":2}}}`))
	f.Add([]byte(`{`), []byte(`null`))
	f.Add([]byte(`{"a":[1,2]}`), []byte(`{"a":{"b":1}}`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		results := map[string]run.TaskRecord{
			"a": {Status: run.TaskOK, Result: a},
			"b": {Status: run.TaskOK, Result: b},
		}
		snap, rep := Assemble(telemetry.Default(), []string{"a", "b"}, results, nil)
		if len(rep.Tasks) != 2 || len(rep.Failed) != len(rep.Problems) {
			t.Fatalf("report %+v", rep)
		}
		tasks, _ := snap["tasks"].(map[string]any)
		if len(tasks)+len(rep.Failed) > 2 {
			t.Fatalf("tasks %v, failed %v", tasks, rep.Failed)
		}
	})
}

// The behavioural tasks' fragments land in their plugins' objects, without
// tasks.<name>.took (Kibana's shapes have none), the APM object keeps only
// the data tasks', and the uploaded document carries each object under
// stack_stats.kibana.plugins.<name>.
func TestAssembleAllPutsPluginsUnderTheirNames(t *testing.T) {
	results := map[string]run.TaskRecord{
		"cloud":             {Status: run.TaskOK, TookMS: 4, Result: json.RawMessage(`{"cloud":{"provider":["aws"]}}`)},
		"application_usage": {Status: run.TaskOK, TookMS: 7, Result: json.RawMessage(`{"apm":{"appId":"apm","viewId":"main","clicks_total":3,"views":[]}}`)},
		"ui_counters":       {Status: run.TaskFailed, Error: "boom"},
	}
	lastGood := map[string]json.RawMessage{"ui_counters": json.RawMessage(`{"dailyEvents":[{"appName":"apm","total":2}]}`)}
	all, rep := AssembleAll(telemetry.Default(), []string{"cloud", "application_usage", "ui_counters"}, results, lastGood)
	if got := asJSON(all.APM); got != `{"cloud":{"provider":["aws"]},"tasks":{"cloud":{"took":{"ms":4}}}}` {
		t.Errorf("apm object %s", got)
	}
	if got := asJSON(all.Plugins); got != `{"application_usage":{"apm":{"appId":"apm","clicks_total":3,"viewId":"main","views":[]}},"ui_counters":{"dailyEvents":[{"appName":"apm","total":2}]}}` {
		t.Errorf("plugin objects %s", got)
	}
	if asJSON(rep.Failed) != `["ui_counters"]` || asJSON(rep.CarriedOver) != `["ui_counters"]` || rep.Tasks["application_usage"].TookMS != 7 {
		t.Errorf("report %+v", rep)
	}
	if snap, _ := Assemble(telemetry.Default(), []string{"cloud", "application_usage", "ui_counters"}, results, lastGood); asJSON(snap) != asJSON(all.APM) {
		t.Errorf("Assemble is the APM object of AssembleAll: %s", asJSON(snap))
	}

	apm, _ := json.Marshal(all.APM)
	plugins, _ := json.Marshal(all.Plugins)
	var stored map[string]json.RawMessage // as the run store keeps and returns them
	_ = json.Unmarshal(plugins, &stored)
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	env, err := uploader.Document(uploader.Source{ClusterUUID: "u1"}, at, at, apm, stored)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		StackStats struct {
			Kibana struct {
				Plugins map[string]map[string]any `json:"plugins"`
			} `json:"kibana"`
		} `json:"stack_stats"`
	}
	b, _ := json.Marshal(env)
	_ = json.Unmarshal(b, &doc)
	p := doc.StackStats.Kibana.Plugins
	if len(p) != 3 || p["apm"]["cloud"] == nil || p["apm"]["application_usage"] != nil || p["apm"]["dailyEvents"] != nil ||
		p["application_usage"]["apm"] == nil || p["ui_counters"]["dailyEvents"] == nil {
		t.Errorf("stack_stats.kibana.plugins = %s", asJSON(p))
	}
	if _, err := uploader.Document(uploader.Source{ClusterUUID: "u1"}, at, at, apm, map[string]json.RawMessage{"apm": json.RawMessage(`{}`)}); err == nil {
		t.Error("a plugin object may not replace the APM object")
	}
}
