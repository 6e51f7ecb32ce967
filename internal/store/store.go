package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/keys"
)

// Run statuses.
const (
	StatusRunning   = "running"
	StatusClosed    = "closed"
	StatusFinalized = "finalized"
)

// Task record statuses.
const (
	TaskOK        = "ok"
	TaskFailed    = "failed"
	TaskTimeout   = "timeout"
	TaskRetrying  = "retrying"
	TaskCancelled = "cancelled"
)

// ErrNotFound is returned for a run or snapshot that is not in Redis.
var ErrNotFound = errors.New("not found")

// Run is a run's metadata.
type Run struct {
	ID          string         `json:"id"`
	Trigger     string         `json:"trigger"`
	Status      string         `json:"status"`
	CreatedAt   time.Time      `json:"created_at"`
	Deadline    time.Time      `json:"deadline"`
	Tasks       []string       `json:"tasks"`
	Indices     config.Indices `json:"indices"`
	ClosedAt    time.Time      `json:"closed_at,omitzero"`
	CloseReason string         `json:"close_reason,omitempty"`
	FinalizedAt time.Time      `json:"finalized_at,omitzero"`
	// Upload is the upload's outcome: pending, uploaded, written, skipped or failed.
	Upload       string `json:"upload,omitempty"`
	UploadDetail string `json:"upload_detail,omitempty"`
	// Report is the finalize summary (JSON): failed and carried-over tasks, unmapped fields.
	Report json.RawMessage `json:"report,omitempty"`
}

// TaskRecord is one task's outcome in a run.
type TaskRecord struct {
	Task       string          `json:"task"`
	Status     string          `json:"status"`
	TookMS     int64           `json:"took_ms"`
	Error      string          `json:"error,omitempty"`
	Warnings   []string        `json:"warnings,omitempty"`
	Attempt    int             `json:"attempt"`
	Worker     string          `json:"worker,omitempty"`
	FinishedAt time.Time       `json:"finished_at"`
	Result     json.RawMessage `json:"result,omitempty"`
}

// Final reports whether the record is a task's last word.
func (r TaskRecord) Final() bool { return r.Status != TaskRetrying }

// Store reads and writes runs in Redis.
type Store struct {
	rdb  redis.UniversalClient
	keys keys.Space
	ttl  time.Duration
	max  int
}

// New returns a store. ttl bounds how long runs stay; limit bounds how many.
func New(rdb redis.UniversalClient, space keys.Space, ttl time.Duration, limit int) *Store {
	return &Store{rdb: rdb, keys: space, ttl: ttl, max: limit}
}

// Keys returns the store's key space.
func (s *Store) Keys() keys.Space { return s.keys }

// CreateRun creates r with every task pending; it reports false when a run
// with that id already exists (nothing is changed then).
func (s *Store) CreateRun(ctx context.Context, r Run) (bool, error) {
	if err := keys.ValidRunID(r.ID); err != nil {
		return false, err
	}
	ix, err := json.Marshal(r.Indices)
	if err != nil {
		return false, err
	}
	tasks, _ := json.Marshal(r.Tasks)
	meta, _ := json.Marshal(map[string]string{
		"id":         r.ID,
		"trigger":    r.Trigger,
		"status":     StatusRunning,
		"created_at": r.CreatedAt.UTC().Format(time.RFC3339Nano),
		"deadline":   r.Deadline.UTC().Format(time.RFC3339Nano),
		"tasks":      string(tasks),
		"indices":    string(ix),
		"upload":     "pending",
	})
	args := []any{r.ID, r.CreatedAt.UnixMilli(), s.ttl.Milliseconds(), string(meta)}
	for _, t := range r.Tasks {
		args = append(args, t)
	}
	n, err := createRunScript.Run(ctx, s.rdb, []string{s.keys.Run(r.ID), s.keys.Pending(r.ID), s.keys.Runs()}, args...).Int()
	if err != nil {
		return false, fmt.Errorf("create run %s: %w", r.ID, err)
	}
	if n == 1 {
		if err := s.trim(ctx); err != nil {
			return true, err
		}
	}
	return n == 1, nil
}

// GetRun reads a run's metadata.
func (s *Store) GetRun(ctx context.Context, id string) (Run, error) {
	m, err := s.rdb.HGetAll(ctx, s.keys.Run(id)).Result()
	if err != nil {
		return Run{}, fmt.Errorf("get run %s: %w", id, err)
	}
	if len(m) == 0 {
		return Run{}, fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	r := Run{ID: m["id"], Trigger: m["trigger"], Status: m["status"], CloseReason: m["close_reason"],
		Upload: m["upload"], UploadDetail: m["upload_detail"]}
	var errs []error
	parseT := func(k string, dst *time.Time) {
		if v := m[k]; v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
			}
			*dst = t
		}
	}
	parseT("created_at", &r.CreatedAt)
	parseT("deadline", &r.Deadline)
	parseT("closed_at", &r.ClosedAt)
	parseT("finalized_at", &r.FinalizedAt)
	if err := json.Unmarshal([]byte(m["tasks"]), &r.Tasks); err != nil {
		errs = append(errs, fmt.Errorf("tasks: %w", err))
	}
	if err := json.Unmarshal([]byte(m["indices"]), &r.Indices); err != nil {
		errs = append(errs, fmt.Errorf("indices: %w", err))
	}
	if v := m["report"]; v != "" {
		r.Report = json.RawMessage(v)
	}
	if err := errors.Join(errs...); err != nil {
		return r, fmt.Errorf("run %s is corrupt: %w", id, err)
	}
	return r, nil
}

// RecordOutcome is what Record did.
type RecordOutcome struct {
	// Stored is true when the record was written.
	Stored bool
	// Duplicate is true when the task already had a final record (kept).
	Duplicate bool
	// RunNotRunning is true when the run was closed or gone; nothing was written.
	RunNotRunning bool
	// Remaining is the number of tasks still pending after this call.
	Remaining int
	// Completed is true for exactly one call per run: the one that stored the
	// last pending task's final record.
	Completed bool
}

// Record stores rec for run id atomically (see recordScript).
func (s *Store) Record(ctx context.Context, id string, rec TaskRecord) (RecordOutcome, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return RecordOutcome{}, err
	}
	final := "0"
	if rec.Final() {
		final = "1"
	}
	res, err := recordScript.Run(ctx, s.rdb, []string{s.keys.Run(id), s.keys.Results(id), s.keys.Pending(id)}, rec.Task, string(b), final).Int64Slice()
	if err != nil {
		return RecordOutcome{}, fmt.Errorf("record %s/%s: %w", id, rec.Task, err)
	}
	o := RecordOutcome{Remaining: int(res[1])}
	switch res[0] {
	case 1:
		o.Stored, o.Completed = true, res[1] == 0
	case 2:
		o.Stored = true
	case 0:
		o.Duplicate = true
	case -1:
		o.RunNotRunning = true
	}
	return o, nil
}

// Close stops run id from accepting results; it reports whether this call closed it.
func (s *Store) Close(ctx context.Context, id, reason string, now time.Time) (bool, error) {
	n, err := closeScript.Run(ctx, s.rdb, []string{s.keys.Run(id), s.keys.Pending(id)}, now.UTC().Format(time.RFC3339Nano), reason).Int()
	if err != nil {
		return false, fmt.Errorf("close run %s: %w", id, err)
	}
	if n < 0 {
		return false, fmt.Errorf("close run %s: %w", id, ErrNotFound)
	}
	return n == 1, nil
}

// Results returns the run's task records by task name. A record that cannot
// be decoded is returned as a failed record that says so, never dropped.
func (s *Store) Results(ctx context.Context, id string) (map[string]TaskRecord, error) {
	m, err := s.rdb.HGetAll(ctx, s.keys.Results(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("results %s: %w", id, err)
	}
	out := make(map[string]TaskRecord, len(m))
	for task, raw := range m {
		var r TaskRecord
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			r = TaskRecord{Task: task, Status: TaskFailed, Error: "corrupt record in Redis: " + err.Error()}
		}
		r.Task = task
		out[task] = r
	}
	return out, nil
}

// PutResult overwrites a task's record without checks; finalize uses it to
// mark tasks that never finished once the run is closed.
func (s *Store) PutResult(ctx context.Context, id string, rec TaskRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	pipe := s.rdb.TxPipeline()
	pipe.HSet(ctx, s.keys.Results(id), rec.Task, b)
	pipe.PExpire(ctx, s.keys.Results(id), s.ttl)
	_, err = pipe.Exec(ctx)
	return err
}

// SetFields sets metadata fields of a run (finalize and upload outcomes).
func (s *Store) SetFields(ctx context.Context, id string, kv ...string) error {
	if len(kv)%2 != 0 {
		return fmt.Errorf("SetFields: odd number of arguments")
	}
	vals := make([]any, len(kv))
	for i, v := range kv {
		vals[i] = v
	}
	return s.rdb.HSet(ctx, s.keys.Run(id), vals...).Err()
}

// SetFieldIfAbsent sets a metadata field of a run unless it is already set.
func (s *Store) SetFieldIfAbsent(ctx context.Context, id, field, value string) error {
	return s.rdb.HSetNX(ctx, s.keys.Run(id), field, value).Err()
}

// PutSnapshot stores the run's telemetry object and marks it as the latest
// when no newer run has one. It is idempotent.
func (s *Store) PutSnapshot(ctx context.Context, r Run, snapshot []byte) error {
	if err := s.rdb.Set(ctx, s.keys.Snapshot(r.ID), snapshot, s.ttl).Err(); err != nil {
		return fmt.Errorf("put snapshot %s: %w", r.ID, err)
	}
	v := strconv.FormatInt(r.CreatedAt.UnixMilli(), 10) + "|" + r.ID
	if err := setLatestScript.Run(ctx, s.rdb, []string{s.keys.Latest()}, v).Err(); err != nil {
		return fmt.Errorf("set latest %s: %w", r.ID, err)
	}
	return nil
}

// Snapshot returns a run's telemetry object.
func (s *Store) Snapshot(ctx context.Context, id string) ([]byte, error) {
	b, err := s.rdb.Get(ctx, s.keys.Snapshot(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("snapshot of run %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot of run %s: %w", id, err)
	}
	return b, nil
}

// Latest returns the id of the newest finalized run and its creation time.
func (s *Store) Latest(ctx context.Context) (string, time.Time, error) {
	v, err := s.rdb.Get(ctx, s.keys.Latest()).Result()
	if errors.Is(err, redis.Nil) {
		return "", time.Time{}, ErrNotFound
	}
	if err != nil {
		return "", time.Time{}, err
	}
	ms, id, ok := strings.Cut(v, "|")
	n, perr := strconv.ParseInt(ms, 10, 64)
	if !ok || perr != nil {
		return "", time.Time{}, fmt.Errorf("latest pointer %q is corrupt", v)
	}
	return id, time.UnixMilli(n), nil
}

// LastGood returns each task's last successful fragment.
func (s *Store) LastGood(ctx context.Context) (map[string]json.RawMessage, error) {
	m, err := s.rdb.HGetAll(ctx, s.keys.LastGood()).Result()
	if err != nil {
		return nil, err
	}
	out := map[string]json.RawMessage{}
	for task, v := range m {
		_, frag, ok := strings.Cut(v, "|")
		if ok && json.Valid([]byte(frag)) {
			out[task] = json.RawMessage(frag)
		}
	}
	return out, nil
}

// SetLastGood stores fragments of successful tasks of run r unless a newer run stored one.
func (s *Store) SetLastGood(ctx context.Context, r Run, frags map[string]json.RawMessage) error {
	if len(frags) == 0 {
		return nil
	}
	ms := strconv.FormatInt(r.CreatedAt.UnixMilli(), 10)
	args := make([]any, 0, 2*len(frags))
	for task, f := range frags {
		args = append(args, task, ms+"|"+string(bytes.TrimSpace(f)))
	}
	return setIfNewerScript.Run(ctx, s.rdb, []string{s.keys.LastGood()}, args...).Err()
}

// ListRuns returns up to n runs, newest first. Runs whose metadata expired are skipped.
func (s *Store) ListRuns(ctx context.Context, n int) ([]Run, error) {
	ids, err := s.rdb.ZRevRange(ctx, s.keys.Runs(), 0, int64(n-1)).Result()
	if err != nil {
		return nil, err
	}
	var out []Run
	for _, id := range ids {
		r, err := s.GetRun(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			r = Run{ID: id, Status: "corrupt: " + err.Error()}
		}
		out = append(out, r)
	}
	return out, nil
}

// Trim drops finalized runs beyond the history limit, and history entries
// whose run expired (their keys carry the TTL; only the oldest entries are
// checked, since runs expire in creation order). A run still in progress,
// or whose upload has not ended, is never dropped, however many runs were
// started after it.
func (s *Store) Trim(ctx context.Context) error { return s.trim(ctx) }

func (s *Store) trim(ctx context.Context) error {
	over, err := s.rdb.ZRange(ctx, s.keys.Runs(), 0, int64(-s.max-1)).Result()
	if err != nil {
		return fmt.Errorf("trim history: %w", err)
	}
	var drop []string
	for _, id := range over {
		vals, err := s.rdb.HMGet(ctx, s.keys.Run(id), "status", "upload").Result()
		if err != nil {
			return fmt.Errorf("trim history: %w", err)
		}
		status, _ := vals[0].(string)
		upload, _ := vals[1].(string)
		if vals[0] == nil || status == StatusFinalized && upload != "pending" && upload != "retrying" {
			drop = append(drop, id)
		}
	}
	oldest, err := s.rdb.ZRange(ctx, s.keys.Runs(), int64(len(over)), int64(len(over)+9)).Result()
	if err != nil {
		return fmt.Errorf("trim history: %w", err)
	}
	for _, id := range oldest {
		n, err := s.rdb.Exists(ctx, s.keys.Run(id)).Result()
		if err != nil {
			return fmt.Errorf("trim history: %w", err)
		}
		if n == 0 {
			drop = append(drop, id)
		}
	}
	if len(drop) == 0 {
		return nil
	}
	pipe := s.rdb.TxPipeline()
	for _, id := range drop {
		pipe.Del(ctx, s.keys.RunKeys(id)...)
		pipe.ZRem(ctx, s.keys.Runs(), id)
	}
	_, err = pipe.Exec(ctx)
	return err
}
