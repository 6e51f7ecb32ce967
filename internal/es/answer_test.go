package es

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestAnswerCheck(t *testing.T) {
	body := map[string]any{"size": 0, "aggs": map[string]any{"a": 1, "b": 1}}
	tests := []struct {
		name, answer string
		want         string // "" for a whole answer
	}{
		{"whole", `{"timed_out":false,"_shards":{"total":3,"skipped":1,"failed":0},"aggregations":{"a":{},"b":{}}}`, ""},
		{"no shard searched", `{"timed_out":false,"_shards":{"total":0,"failed":0}}`, ""},
		{"no _shards", `{"hits":{}}`, ""},
		{"timed out", `{"timed_out":true,"_shards":{"total":1},"aggregations":{"a":{},"b":{}}}`, "partial answer from ix: timed_out: true"},
		{"failed shards", `{"_shards":{"total":3,"failed":2,"failures":[{"index":"i1","reason":{"type":"t","reason":"r"}}]},"aggregations":{"a":{},"b":{}}}`,
			"partial answer from ix: 2 of 3 shards failed (i1: t: r)"},
		{"aggregation missing", `{"_shards":{"total":3},"aggregations":{"a":{}}}`, "partial answer from ix: aggregations missing: b"},
		{"all at once", `{"timed_out":true,"_shards":{"total":2,"failed":1}}`, "partial answer from ix: timed_out: true; 1 of 2 shards failed; aggregations missing: a, b"},
	}
	for _, tc := range tests {
		var a Answer
		if err := json.Unmarshal([]byte(tc.answer), &a); err != nil {
			t.Fatal(err)
		}
		err := a.Check("ix", body)
		var pe *PartialError
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want whole", tc.name, err)
		case tc.want != "" && (!errors.As(err, &pe) || err.Error() != tc.want || IsPermanent(err)):
			t.Errorf("%s: %v, want %q (not permanent)", tc.name, err, tc.want)
		}
	}
}
