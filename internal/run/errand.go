package run

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Errand is work of a run that is not a telemetry task: no fragment of the
// payload, no retry of its own, never a failed task. Today there is one, the
// capture of the source cluster's identity. It has its own entry in the
// run's record and timeline, so its time is not hidden in a task's bar.
type Errand struct {
	Name string `json:"name"`
	// Status is running, ok or failed.
	Status     TaskStatus `json:"status"`
	Worker     string     `json:"worker,omitempty"`
	StartedAt  time.Time  `json:"started_at,omitzero"`
	FinishedAt time.Time  `json:"finished_at,omitzero"`
	TookMS     int64      `json:"took_ms,omitempty"`
	Error      string     `json:"error,omitempty"`
	RequestStats
}

// ErrandSourceIdentity reads the source cluster's identity for the upload
// (GET /, _cluster/stats, _nodes/usage, _license, Kibana's saved objects).
const ErrandSourceIdentity = "source_identity"

// RequestStats is what a task's or an errand's requests to the source
// cluster spent, measured around the cluster-wide cap: how many attempts,
// how long they waited for a slot in all and at most, and how long they held
// one (the request itself) — sums over requests that overlap. CapOnlyMS and
// AtSourceMS are wall time and split the took: while the task had requests
// waiting for a slot and none at the source (held up by the cap alone), and
// while it had at least one at the source; the rest of its took is its own
// work.
type RequestStats struct {
	Requests      int   `json:"requests,omitempty"`
	SlotWaitMS    int64 `json:"slot_wait_ms,omitempty"`
	SlotWaitMaxMS int64 `json:"slot_wait_max_ms,omitempty"`
	RequestMS     int64 `json:"request_ms,omitempty"`
	CapOnlyMS     int64 `json:"cap_only_ms,omitempty"`
	AtSourceMS    int64 `json:"at_source_ms,omitempty"`
}

// errandField is the run hash's field of an errand.
func errandField(name string) string { return fieldErrandPrefix + name }

// decodeErrands reads the errand fields of a run's hash, in start order. An
// entry that cannot be decoded is returned failed, saying so.
func decodeErrands(m map[string]string) []Errand {
	var out []Errand
	for k, v := range m {
		name, ok := strings.CutPrefix(k, fieldErrandPrefix)
		if !ok {
			continue
		}
		var e Errand
		if err := json.Unmarshal([]byte(v), &e); err != nil {
			e = Errand{Status: TaskFailed, Error: "corrupt errand in Redis: " + err.Error()}
		}
		e.Name = name
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].StartedAt.Equal(out[j].StartedAt) {
			return out[i].StartedAt.Before(out[j].StartedAt)
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// errandScript stores an errand's entry and, with its outcome, the source
// identity it read (once per run).
//
// KEYS[1] run hash
// ARGV[1] errand field ("errand:<name>"), ARGV[2] errand JSON, ARGV[3]
// source info JSON ("" for none)
// Result: 1 when stored, -1 when the run is gone (nothing written).
var errandScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('HSETNX', KEYS[1], 'source_info', ARGV[3]) end
return 1
`)

// RecordErrand stores e as the run's entry of e.Name (running when it
// starts, then its outcome) and, when sourceInfo is not empty, the source
// cluster's identity unless the run has it.
func (s *Store) RecordErrand(ctx context.Context, id string, e Errand, sourceInfo json.RawMessage) error {
	if e.Name == "" {
		return fmt.Errorf("run %s: errand without a name", id)
	}
	if len(sourceInfo) > 0 && !json.Valid(sourceInfo) {
		return fmt.Errorf("run %s: source info is not JSON", id)
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	n, err := errandScript.Run(ctx, s.rdb, []string{s.keys.Run(id)}, errandField(e.Name), string(b), string(sourceInfo)).Int()
	if err != nil {
		return fmt.Errorf("run %s: errand %s: %w", id, e.Name, err)
	}
	if n < 0 {
		return fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	return nil
}

// RefusalTTL is how long a source cluster's refusal is remembered: a day,
// so a cluster upgraded to accept the parameter is asked again within one.
const RefusalTTL = 24 * time.Hour

// Refused reports whether the source cluster refused what within
// RefusalTTL. It is remembered in Redis rather than per process because the
// errand runs on whichever worker takes the run's first task: per process,
// every worker (and every restart) would pay the refused request again.
// A Redis error counts as not refused (the request is merely asked again).
func (s *Store) Refused(ctx context.Context, what string) bool {
	n, err := s.rdb.Exists(ctx, s.keys.Refused(what)).Result()
	return err == nil && n == 1
}

// NoteRefused remembers for RefusalTTL that the source cluster refused
// what; a failure to store it only costs the refused request next time.
func (s *Store) NoteRefused(ctx context.Context, what string) {
	_ = s.rdb.Set(ctx, s.keys.Refused(what), "1", RefusalTTL).Err()
}
