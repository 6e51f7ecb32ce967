package collect

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/apmtel/apmtel/internal/run"
)

func asJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestAssemble(t *testing.T) {
	results := map[string]run.TaskRecord{
		"a": {Status: run.TaskOK, TookMS: 5, Result: json.RawMessage(`{"counts":{"error":{"1d":12345678901234567}}}`)},
		"b": {Status: run.TaskOK, TookMS: 6, Result: json.RawMessage(`{"counts":{"span":{"1d":2}}}`)},
		"c": {Status: run.TaskTimeout, Error: "slow"},
	}
	snap, rep := Assemble([]string{"a", "b", "c", "d"}, results, map[string]json.RawMessage{"c": json.RawMessage(`{"c":true}`)})
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
			snap, rep := Assemble([]string{"a", "b"}, results, map[string]json.RawMessage{"a": json.RawMessage(`{"a":"previous"}`)})
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
		snap, rep := Assemble([]string{"a", "b"}, results, nil)
		if len(rep.Tasks) != 2 || len(rep.Failed) != len(rep.Problems) {
			t.Fatalf("report %+v", rep)
		}
		tasks, _ := snap["tasks"].(map[string]any)
		if len(tasks)+len(rep.Failed) > 2 {
			t.Fatalf("tasks %v, failed %v", tasks, rep.Failed)
		}
	})
}
