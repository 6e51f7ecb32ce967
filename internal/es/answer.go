package es

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Answer is the part of a search answer that says whether it is whole.
// Elasticsearch answers 200 when some shards failed or the search's own
// timeout cut it short, and leaves the failed shards' hits and aggregations
// out: read as data, such an answer is a set of wrong counts (zeros) that
// look good. Kibana's telemetry records them as good; apmtel fails the
// attempt instead (the job is retried, a failed task keeps its last good value).
type Answer struct {
	TimedOut bool    `json:"timed_out"`
	Shards   *Shards `json:"_shards"`
	// Aggregations are the top-level aggregations, by name.
	Aggregations map[string]json.RawMessage `json:"aggregations"`
}

// Shards is an answer's _shards. Skipped shards (pre-filtered because they
// cannot match) are not failures.
type Shards struct {
	Total    int `json:"total"`
	Skipped  int `json:"skipped"`
	Failed   int `json:"failed"`
	Failures []struct {
		Index  string `json:"index"`
		Reason struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"reason"`
	} `json:"failures"`
}

// PartialError is a 2xx answer the cluster itself marked as incomplete, or
// one that lacks an aggregation the request asked for. It is not permanent:
// a retry may well get the whole answer.
type PartialError struct {
	// Index names the request's targets.
	Index string
	// What says what was partial.
	What string
}

func (e *PartialError) Error() string {
	return fmt.Sprintf("partial answer from %s: %s", e.Index, e.What)
}

// Check returns a *PartialError when the answer to a search of index with
// request body is partial: timed out, a failed shard, or a top-level
// aggregation of body ("aggs" or "aggregations") missing. An answer that
// searched no shard at all (no index matched: allow_no_indices) carries no
// aggregations and is whole; so is one without _shards (not a search answer).
func (a Answer) Check(index string, body map[string]any) error {
	var what []string
	if a.TimedOut {
		what = append(what, "timed_out: true")
	}
	if s := a.Shards; s != nil && s.Failed > 0 {
		w := fmt.Sprintf("%d of %d shards failed", s.Failed, s.Total)
		if len(s.Failures) > 0 {
			f := s.Failures[0]
			w += fmt.Sprintf(" (%s: %s: %s)", f.Index, f.Reason.Type, truncate(f.Reason.Reason, 200))
		}
		what = append(what, w)
	}
	if a.Shards != nil && a.Shards.Total > 0 {
		if missing := missingAggs(body, a.Aggregations); len(missing) > 0 {
			what = append(what, "aggregations missing: "+strings.Join(missing, ", "))
		}
	}
	if len(what) == 0 {
		return nil
	}
	return &PartialError{Index: index, What: strings.Join(what, "; ")}
}

func missingAggs(body map[string]any, got map[string]json.RawMessage) []string {
	var missing []string
	for _, k := range []string{"aggs", "aggregations"} {
		asked, _ := body[k].(map[string]any)
		for name := range asked {
			if _, ok := got[name]; !ok {
				missing = append(missing, name)
			}
		}
	}
	slices.Sort(missing)
	return missing
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
