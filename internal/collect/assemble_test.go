package collect

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/internal/uploader"
)

func asJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// diffJSON compares v, as it would be encoded, with the JSON text want by
// value (numbers exactly, as json.Number): "" when equal, else a diff (-want +got).
func diffJSON(t *testing.T, want string, v any) string {
	t.Helper()
	decode := func(b []byte) any {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var x any
		if err := d.Decode(&x); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		return x
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return cmp.Diff(decode([]byte(want)), decode(b))
}

func TestAssemble(t *testing.T) {
	results := map[string]run.TaskRecord{
		"a": {Status: run.TaskOK, TookMS: 5, Result: json.RawMessage(`{"counts":{"error":{"1d":12345678901234567}}}`)},
		"b": {Status: run.TaskOK, TookMS: 6, Result: json.RawMessage(`{"counts":{"span":{"1d":2}}}`)},
		"c": {Status: run.TaskTimeout, Error: "slow"},
	}
	snap, rep := Assemble(telemetry.Default(), []string{"a", "b", "c", "d"}, results, map[string]json.RawMessage{"c": json.RawMessage(`{"c":true}`)})
	want := `{"c":true,"counts":{"error":{"1d":12345678901234567},"span":{"1d":2}},"tasks":{"a":{"took":{"ms":5}},"b":{"took":{"ms":6}}}}`
	if d := diffJSON(t, want, snap); d != "" {
		t.Errorf("snapshot (-want +got):\n%s", d)
	}
	if !slices.Equal(rep.Failed, []string{"c", "d"}) || !slices.Equal(rep.CarriedOver, []string{"c"}) || len(rep.Problems) != 0 {
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
			if d := diffJSON(t, `{"a":"previous","b":1,"tasks":{"b":{"took":{"ms":6}}}}`, snap); d != "" {
				t.Errorf("snapshot (-want +got):\n%s", d)
			}
			if !slices.Equal(rep.Failed, []string{"a"}) || !slices.Equal(rep.CarriedOver, []string{"a"}) || len(rep.Problems) != 1 ||
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
	if d := diffJSON(t, `{"cloud":{"provider":["aws"]},"tasks":{"cloud":{"took":{"ms":4}}}}`, all.APM); d != "" {
		t.Errorf("apm object (-want +got):\n%s", d)
	}
	if d := diffJSON(t, `{"application_usage":{"apm":{"appId":"apm","clicks_total":3,"viewId":"main","views":[]}},"ui_counters":{"dailyEvents":[{"appName":"apm","total":2}]}}`, all.Plugins); d != "" {
		t.Errorf("plugin objects (-want +got):\n%s", d)
	}
	if !slices.Equal(rep.Failed, []string{"ui_counters"}) || !slices.Equal(rep.CarriedOver, []string{"ui_counters"}) || rep.Tasks["application_usage"].TookMS != 7 {
		t.Errorf("report %+v", rep)
	}
	snap, _ := Assemble(telemetry.Default(), []string{"cloud", "application_usage", "ui_counters"}, results, lastGood)
	if d := diffJSON(t, asJSON(all.APM), snap); d != "" {
		t.Errorf("Assemble is not the APM object of AssembleAll (-AssembleAll +Assemble):\n%s", d)
	}

	apm, _ := json.Marshal(all.APM)
	plugins, _ := json.Marshal(all.Plugins)
	var stored map[string]json.RawMessage // as the run store keeps and returns them
	if err := json.Unmarshal(plugins, &stored); err != nil {
		t.Fatal(err)
	}
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
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	p := doc.StackStats.Kibana.Plugins
	if len(p) != 3 || p["apm"]["cloud"] == nil || p["apm"]["application_usage"] != nil || p["apm"]["dailyEvents"] != nil ||
		p["application_usage"]["apm"] == nil || p["ui_counters"]["dailyEvents"] == nil {
		t.Errorf("stack_stats.kibana.plugins = %s", asJSON(p))
	}
	if _, err := uploader.Document(uploader.Source{ClusterUUID: "u1"}, at, at, apm, map[string]json.RawMessage{"apm": json.RawMessage(`{}`)}); err == nil {
		t.Error("a plugin object may not replace the APM object")
	}
}
