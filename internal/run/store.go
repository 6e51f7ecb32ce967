package run

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apmtel/apmtel/internal/keys"
)

// ErrNotFound is returned for a run or snapshot that is not in Redis.
var ErrNotFound = errors.New("not found")

// StateError says a transition was refused because of the run's state.
type StateError struct {
	Run    string
	Status Status
	// Upload is set when the upload's state refused the transition.
	Upload UploadState
	Op     string
}

func (e *StateError) Error() string {
	if e.Upload != "" {
		return fmt.Sprintf("run %s: cannot %s: upload is %s", e.Run, e.Op, e.Upload)
	}
	switch e.Status {
	case StatusSealed:
		return fmt.Sprintf("run %s: cannot %s: already finalized (sealed)", e.Run, e.Op)
	case StatusCancelled:
		return fmt.Sprintf("run %s: cannot %s: already cancelled", e.Run, e.Op)
	case StatusClosed:
		return fmt.Sprintf("run %s: cannot %s: already finalizing (closed)", e.Run, e.Op)
	}
	return fmt.Sprintf("run %s: cannot %s: run is %s", e.Run, e.Op, e.Status)
}

// Store reads and writes runs of one key space (one source cluster) in Redis.
type Store struct {
	rdb   redis.UniversalClient
	keys  keys.Space
	ttl   time.Duration
	limit int
}

// NewStore returns a store. ttl bounds how long a run is kept; limit how
// many runs the history keeps (see Trim).
func NewStore(rdb redis.UniversalClient, space keys.Space, ttl time.Duration, limit int) *Store {
	return &Store{rdb: rdb, keys: space, ttl: ttl, limit: limit}
}

// Keys returns the store's key space.
func (s *Store) Keys() keys.Space { return s.keys }

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Create stores r as open with every task pending. It reports false when a
// run with that id exists (nothing is changed then).
func (s *Store) Create(ctx context.Context, r Run) (bool, error) {
	if err := keys.ValidRunID(r.ID); err != nil {
		return false, err
	}
	if !r.Kind.Valid() {
		return false, fmt.Errorf("run %s: invalid kind %q", r.ID, r.Kind)
	}
	ix, err := json.Marshal(r.Indices)
	if err != nil {
		return false, err
	}
	tasks, _ := json.Marshal(r.Tasks)
	meta, _ := json.Marshal(map[string]string{
		fieldID:        r.ID,
		fieldSource:    s.keys.Source,
		fieldTrigger:   r.Trigger,
		fieldKind:      string(r.Kind),
		fieldStatus:    string(StatusOpen),
		fieldCreatedAt: ts(r.CreatedAt),
		fieldDeadline:  ts(r.Deadline),
		fieldTasks:     string(tasks),
		fieldIndices:   string(ix),
		fieldUpload:    string(UploadPending),
	})
	args := []any{r.ID, r.CreatedAt.UnixMilli(), s.ttl.Milliseconds(), string(meta)}
	for _, t := range r.Tasks {
		args = append(args, t)
	}
	n, err := createScript.Run(ctx, s.rdb, []string{s.keys.Run(r.ID), s.keys.Pending(r.ID), s.keys.Runs()}, args...).Int()
	if err != nil {
		return false, fmt.Errorf("create run %s: %w", r.ID, err)
	}
	if n == 1 {
		if _, err := s.Trim(ctx); err != nil {
			return true, err
		}
	}
	return n == 1, nil
}

// Get reads a run's metadata.
func (s *Store) Get(ctx context.Context, id string) (Run, error) {
	m, err := s.rdb.HGetAll(ctx, s.keys.Run(id)).Result()
	if err != nil {
		return Run{}, fmt.Errorf("get run %s: %w", id, err)
	}
	if len(m) == 0 {
		return Run{}, fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	return decodeRun(id, m)
}

func decodeRun(id string, m map[string]string) (Run, error) {
	r := Run{ID: m[fieldID], Source: m[fieldSource], Trigger: m[fieldTrigger], Kind: Kind(m[fieldKind]),
		Status: Status(m[fieldStatus]), CloseReason: CloseReason(m[fieldCloseReason]),
		Upload: Upload{State: UploadState(m[fieldUpload]), Error: m[fieldUploadError], Detail: m[fieldUploadDetail]}}
	if r.ID == "" {
		r.ID = id
	}
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
	parseT(fieldCreatedAt, &r.CreatedAt)
	parseT(fieldDeadline, &r.Deadline)
	parseT(fieldClosedAt, &r.ClosedAt)
	parseT(fieldSealedAt, &r.SealedAt)
	parseT(fieldUploadAt, &r.Upload.At)
	parseT(fieldUploadSince, &r.Upload.Since)
	r.Upload.Attempt, _ = strconv.Atoi(m[fieldUploadAttempt])
	r.Upload.MaxAttempts, _ = strconv.Atoi(m[fieldUploadMax])
	if err := json.Unmarshal([]byte(m[fieldTasks]), &r.Tasks); err != nil {
		errs = append(errs, fmt.Errorf("tasks: %w", err))
	}
	if err := json.Unmarshal([]byte(m[fieldIndices]), &r.Indices); err != nil {
		errs = append(errs, fmt.Errorf("indices: %w", err))
	}
	if v := m[fieldSourceInfo]; v != "" && json.Valid([]byte(v)) {
		r.SourceInfo = json.RawMessage(v)
	}
	if v := m[fieldReport]; v != "" {
		var rep Report
		if err := json.Unmarshal([]byte(v), &rep); err != nil {
			errs = append(errs, fmt.Errorf("report: %w", err))
		} else {
			r.Report = &rep
		}
	}
	r.Errands = decodeErrands(m)
	if !r.Kind.Valid() {
		errs = append(errs, fmt.Errorf("kind: %q", r.Kind))
	}
	if err := errors.Join(errs...); err != nil {
		return r, fmt.Errorf("run %s is corrupt: %w", id, err)
	}
	return r, nil
}

// StartOutcome is what Start did.
type StartOutcome struct {
	// Started: the attempt is recorded as running; Record holds it.
	Started bool
	Record  TaskRecord
	// AlreadyFinal: the task has its final record; this delivery is a repeat.
	AlreadyFinal bool
	// NotOpen: the run is closed, sealed, cancelled or gone.
	NotOpen bool
	// Remaining is the number of tasks without a final record.
	Remaining int
}

// Start records that attempt (1-based) of task began on worker at at.
func (s *Store) Start(ctx context.Context, r Run, task string, attempt, maxAttempts int, worker string, at time.Time) (StartOutcome, error) {
	res, err := startScript.Run(ctx, s.rdb,
		[]string{s.keys.Run(r.ID), s.keys.Results(r.ID), s.keys.Pending(r.ID), s.keys.Attempts(r.ID)},
		task, attempt, maxAttempts, worker, ts(at), ts(r.CreatedAt)).Slice()
	if err != nil {
		return StartOutcome{}, fmt.Errorf("start %s/%s: %w", r.ID, task, err)
	}
	var code, rem int64
	var enc string
	if err := reply("start", res, &code, &rem, &enc); err != nil {
		return StartOutcome{}, fmt.Errorf("start %s/%s: %w", r.ID, task, err)
	}
	o := StartOutcome{Remaining: int(rem)}
	switch code {
	case 1:
		o.Started = true
		if err := json.Unmarshal([]byte(enc), &o.Record); err != nil {
			return o, fmt.Errorf("start %s/%s: decode record: %w", r.ID, task, err)
		}
	case 0:
		o.AlreadyFinal = true
	default:
		o.NotOpen = true
	}
	return o, nil
}

// RecordOutcome is what Record did.
type RecordOutcome struct {
	// Stored is true when the record was written.
	Stored bool
	// Duplicate is true when the task already had a final record (kept).
	Duplicate bool
	// NotOpen is true when the run was closed or gone; nothing was written.
	NotOpen bool
	// Remaining is the number of tasks still pending after this call.
	Remaining int
	// Completed is true for the call that stored the last pending task's
	// final record.
	Completed bool
}

// Record stores the outcome of an attempt (rec.Attempt) of a task.
func (s *Store) Record(ctx context.Context, id string, rec TaskRecord) (RecordOutcome, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return RecordOutcome{}, err
	}
	final := "0"
	if rec.Status.Final() {
		final = "1"
	}
	ab, _ := json.Marshal(attemptOf(rec))
	res, err := recordScript.Run(ctx, s.rdb,
		[]string{s.keys.Run(id), s.keys.Results(id), s.keys.Pending(id), s.keys.Attempts(id)},
		rec.Task, string(b), final, attemptField(rec.Task, rec.Attempt), string(ab)).Slice()
	if err != nil {
		return RecordOutcome{}, fmt.Errorf("record %s/%s: %w", id, rec.Task, err)
	}
	var code, rem int64
	if err := reply("record", res, &code, &rem); err != nil {
		return RecordOutcome{}, fmt.Errorf("record %s/%s: %w", id, rec.Task, err)
	}
	o := RecordOutcome{Remaining: int(rem)}
	switch code {
	case 1:
		o.Stored, o.Completed = true, rem == 0
	case 2:
		o.Stored = true
	case 0:
		o.Duplicate = true
	case -1:
		o.NotOpen = true
	}
	return o, nil
}

func attemptField(task string, n int) string { return task + "#" + strconv.Itoa(n) }

func attemptOf(rec TaskRecord) Attempt {
	return Attempt{Task: rec.Task, Attempt: rec.Attempt, Worker: rec.Worker, Status: rec.Status, QueuedAt: rec.QueuedAt,
		StartedAt: rec.StartedAt, FinishedAt: rec.FinishedAt, TookMS: rec.TookMS, Error: rec.Error, RequestStats: rec.RequestStats}
}

// CloseOutcome is what Close did.
type CloseOutcome struct {
	// ClosedNow is true for the call that closed the run.
	ClosedNow bool
	// Status and Reason are the run's after the call.
	Status Status
	Reason CloseReason
}

// Close stops an open run from accepting results.
func (s *Store) Close(ctx context.Context, id string, reason CloseReason, now time.Time) (CloseOutcome, error) {
	if reason != ReasonComplete && reason != ReasonDeadline {
		return CloseOutcome{}, fmt.Errorf("close run %s: invalid reason %q", id, reason)
	}
	res, err := closeScript.Run(ctx, s.rdb, []string{s.keys.Run(id), s.keys.Pending(id)}, ts(now), string(reason)).Slice()
	if err != nil {
		return CloseOutcome{}, fmt.Errorf("close run %s: %w", id, err)
	}
	var code int64
	var st, rs string
	if err := reply("close", res, &code, &st, &rs); err != nil {
		return CloseOutcome{}, fmt.Errorf("close run %s: %w", id, err)
	}
	if code < 0 {
		return CloseOutcome{}, fmt.Errorf("close run %s: %w", id, ErrNotFound)
	}
	return CloseOutcome{ClosedNow: code == 1, Status: Status(st), Reason: CloseReason(rs)}, nil
}

// Cancel cancels an open run. A run that is no longer open gives a
// *StateError; a missing one ErrNotFound.
func (s *Store) Cancel(ctx context.Context, id string, now time.Time) error {
	// Trigger and kind never change after Create: reading them first is safe.
	tk, err := s.rdb.HMGet(ctx, s.keys.Run(id), fieldTrigger, fieldKind).Result()
	if err != nil {
		return fmt.Errorf("cancel run %s: %w", id, err)
	}
	trigger, _ := tk[0].(string)
	kind, _ := tk[1].(string)
	res, err := cancelScript.Run(ctx, s.rdb,
		[]string{s.keys.Run(id), s.keys.Pending(id), s.keys.Results(id), s.keys.Attempts(id), s.keys.Counters()},
		ts(now), "run was cancelled before the task finished", runCounter(trigger, Kind(kind), OutcomeCancelled),
		uploadCounter(UploadSkipped)).Slice()
	if err != nil {
		return fmt.Errorf("cancel run %s: %w", id, err)
	}
	var code int64
	var st string
	if err := reply("cancel", res, &code, &st); err != nil {
		return fmt.Errorf("cancel run %s: %w", id, err)
	}
	switch code {
	case 1:
		return nil
	case 0:
		return &StateError{Run: id, Status: Status(st), Op: "cancel"}
	}
	return fmt.Errorf("cancel run %s: %w", id, ErrNotFound)
}

// Seal is what sealing a closed run stores.
type Seal struct {
	At time.Time
	// Unfinished are the final records of tasks that had none when the run
	// closed (timeout, with the last error).
	Unfinished []TaskRecord
	// Snapshot is the assembled telemetry object.
	Snapshot []byte
	// Plugins is the JSON object of the other plugins' objects (name →
	// object, e.g. application_usage); empty when the run has none.
	Plugins []byte
	Report  Report
	// LastGood holds the fragments of the tasks that succeeded in this run.
	LastGood map[string]json.RawMessage
	// Skip, when set, marks the upload skipped; otherwise it stays pending.
	Skip SkipReason
}

// Seal seals a closed run (see sealScript). It reports false when the run
// was no longer closed (another finalizer sealed it, or it was cancelled).
// Only a full run moves the latest pointer.
func (s *Store) Seal(ctx context.Context, r Run, in Seal) (bool, error) {
	rb, err := json.Marshal(in.Report)
	if err != nil {
		return false, err
	}
	latest := "0"
	if r.Kind == KindFull {
		latest = "1"
	}
	up, detail := UploadPending, ""
	if in.Skip != "" {
		up, detail = UploadSkipped, string(in.Skip)
	}
	outcome := OutcomeOK
	if len(in.Report.Failed) > 0 {
		outcome = OutcomeFailed
	}
	created := strconv.FormatInt(r.CreatedAt.UnixMilli(), 10)
	args := []any{ts(in.At), string(rb), string(in.Snapshot), latest, created + "|" + r.ID, string(up), detail, created, len(in.Unfinished),
		string(bytes.TrimSpace(in.Plugins)), AbandonedReason, runCounter(r.Trigger, r.Kind, outcome), uploadCounter(up)}
	for _, rec := range in.Unfinished {
		b, err := json.Marshal(rec)
		if err != nil {
			return false, err
		}
		field, ab := "", []byte(nil)
		if rec.Attempt > 0 {
			field = attemptField(rec.Task, rec.Attempt)
			ab, _ = json.Marshal(attemptOf(rec))
		}
		args = append(args, rec.Task, string(b), field, string(ab))
	}
	for _, task := range sortedKeys(in.LastGood) {
		args = append(args, task, string(bytes.TrimSpace(in.LastGood[task])))
	}
	k := s.keys
	res, err := sealScript.Run(ctx, s.rdb,
		[]string{k.Run(r.ID), k.Results(r.ID), k.Snapshot(r.ID), k.Latest(), k.LastGood(), k.Attempts(r.ID), k.Plugins(r.ID), k.Counters()},
		args...).Slice()
	if err != nil {
		return false, fmt.Errorf("seal run %s: %w", r.ID, err)
	}
	var code int64
	var st string
	if err := reply("seal", res, &code, &st); err != nil {
		return false, fmt.Errorf("seal run %s: %w", r.ID, err)
	}
	if code != 1 {
		if st == "" {
			return false, fmt.Errorf("seal run %s: %w", r.ID, ErrNotFound)
		}
		return false, nil
	}
	if _, err := s.Trim(ctx); err != nil {
		return true, err
	}
	return true, nil
}

// SetSourceInfo stores the source cluster's identity unless the run has it.
func (s *Store) SetSourceInfo(ctx context.Context, id string, info json.RawMessage) error {
	if !json.Valid(info) {
		return fmt.Errorf("run %s: source info is not JSON", id)
	}
	n, err := sourceInfoScript.Run(ctx, s.rdb, []string{s.keys.Run(id)}, string(info)).Int()
	if err != nil {
		return fmt.Errorf("run %s: source info: %w", id, err)
	}
	if n < 0 {
		return fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	return nil
}

func (s *Store) moveUpload(ctx context.Context, id, op string, from []UploadState, to Upload) error {
	fs := make([]string, len(from))
	for i, f := range from {
		fs[i] = string(f)
	}
	res, err := uploadScript.Run(ctx, s.rdb, []string{s.keys.Run(id), s.keys.Counters()}, strings.Join(fs, ","), string(to.State),
		to.Attempt, to.MaxAttempts, to.Error, to.Detail, ts(to.At), uploadCounter(to.State)).Slice()
	if err != nil {
		return fmt.Errorf("run %s: %s: %w", id, op, err)
	}
	var code int64
	var cur string
	if err := reply("upload", res, &code, &cur); err != nil {
		return fmt.Errorf("run %s: %s: %w", id, op, err)
	}
	switch code {
	case 1:
		return nil
	case 0:
		return &StateError{Run: id, Status: StatusSealed, Upload: UploadState(cur), Op: op}
	}
	if cur == "" {
		return fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	return &StateError{Run: id, Status: Status(cur), Op: op}
}

var outstanding = []UploadState{UploadPending, UploadRetrying}

// UploadRetrying records a failed upload attempt that will be retried.
func (s *Store) UploadRetrying(ctx context.Context, id string, attempt, max int, errText string, at time.Time) error {
	return s.moveUpload(ctx, id, "record upload retry", outstanding,
		Upload{State: UploadRetrying, Attempt: attempt, MaxAttempts: max, Error: errText, At: at})
}

// UploadFailed records that the upload gave up: its window or attempts ran
// out, or the error is permanent.
func (s *Store) UploadFailed(ctx context.Context, id string, attempt, max int, errText string, at time.Time) error {
	return s.moveUpload(ctx, id, "record upload failure", outstanding,
		Upload{State: UploadFailed, Attempt: attempt, MaxAttempts: max, Error: errText, At: at})
}

// UploadDelivered records that the payload reached its sink (state
// UploadUploaded or UploadWritten) at where.
func (s *Store) UploadDelivered(ctx context.Context, id string, state UploadState, attempt int, where string, at time.Time) error {
	if !state.Delivered() {
		return fmt.Errorf("run %s: %s is not a delivered state", id, state)
	}
	return s.moveUpload(ctx, id, "record upload", outstanding, Upload{State: state, Attempt: attempt, Detail: where, At: at})
}

// UploadSkipped records that the upload is not made on purpose.
func (s *Store) UploadSkipped(ctx context.Context, id string, why SkipReason, at time.Time) error {
	return s.moveUpload(ctx, id, "skip upload", outstanding, Upload{State: UploadSkipped, Detail: string(why), At: at})
}

// UploadResend puts an ended upload of a full run back to pending, for
// `apmtel upload RUN`. A skipped upload stays skipped.
func (s *Store) UploadResend(ctx context.Context, id string, at time.Time) error {
	return s.moveUpload(ctx, id, "re-send", []UploadState{UploadFailed, UploadUploaded, UploadWritten},
		Upload{State: UploadPending, At: at})
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

// Attempts returns every attempt of every task of the run, in start order
// (attempts that never started last, by task).
func (s *Store) Attempts(ctx context.Context, id string) ([]Attempt, error) {
	m, err := s.rdb.HGetAll(ctx, s.keys.Attempts(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("attempts %s: %w", id, err)
	}
	out := make([]Attempt, 0, len(m))
	for field, raw := range m {
		var a Attempt
		if err := json.Unmarshal([]byte(raw), &a); err != nil {
			task, n, _ := strings.Cut(field, "#")
			a = Attempt{Task: task, Status: TaskFailed, Error: "corrupt attempt in Redis: " + err.Error()}
			a.Attempt, _ = strconv.Atoi(n)
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.StartedAt.IsZero() != b.StartedAt.IsZero() {
			return !a.StartedAt.IsZero()
		}
		if !a.StartedAt.Equal(b.StartedAt) {
			return a.StartedAt.Before(b.StartedAt)
		}
		if a.Task != b.Task {
			return a.Task < b.Task
		}
		return a.Attempt < b.Attempt
	})
	return out, nil
}

// Plugins returns a sealed run's objects for the plugins besides apm
// (name → object); empty, without error, when the run stored none (it had
// no such task, or was sealed by a release without them).
func (s *Store) Plugins(ctx context.Context, id string) (map[string]json.RawMessage, error) {
	b, err := s.rdb.Get(ctx, s.keys.Plugins(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return map[string]json.RawMessage{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("plugin objects of run %s: %w", id, err)
	}
	out := map[string]json.RawMessage{}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("plugin objects of run %s: %w", id, err)
	}
	return out, nil
}

// Snapshot returns a sealed run's telemetry object.
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

// Latest returns the id and creation time of the newest sealed full run.
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

// List returns up to n runs, newest first. Runs whose metadata expired are
// skipped; a corrupt one is returned with its error as status detail.
func (s *Store) List(ctx context.Context, n int) ([]Run, error) {
	ids, err := s.rdb.ZRevRange(ctx, s.keys.Runs(), 0, int64(n-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	var out []Run
	for _, id := range ids {
		r, err := s.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			r.ID, r.Status = id, Status("corrupt: "+err.Error())
		}
		out = append(out, r)
	}
	return out, nil
}

// OpenFull returns the newest full run that is still open or closing (not
// sealed yet), if any: a second full run beside it would collect the same
// figures twice and load the source twice.
func (s *Store) OpenFull(ctx context.Context) (Run, bool, error) {
	runs, err := s.List(ctx, max(s.limit, 20))
	if err != nil {
		return Run{}, false, err
	}
	for _, r := range runs {
		if r.Kind == KindFull && (r.Status == StatusOpen || r.Status == StatusClosed) {
			return r, true, nil
		}
	}
	return Run{}, false, nil
}

// PendingUploads returns sealed full runs whose upload did not deliver:
// pending, retrying or failed, newest first.
func (s *Store) PendingUploads(ctx context.Context, n int) ([]Run, error) {
	all, err := s.List(ctx, max(n, s.limit*2))
	if err != nil {
		return nil, err
	}
	var out []Run
	for _, r := range all {
		if r.Status == StatusSealed && r.Uploadable() && !r.Upload.State.Delivered() && r.Upload.State != UploadSkipped {
			out = append(out, r)
		}
		if len(out) == n {
			break
		}
	}
	return out, nil
}

// Trim bounds the history (see trimScript) and returns how many runs it removed.
func (s *Store) Trim(ctx context.Context) (int, error) {
	args := []any{s.limit, s.keys.RunPrefix()}
	for _, suf := range keys.RunSuffixes {
		args = append(args, suf)
	}
	n, err := trimScript.Run(ctx, s.rdb, []string{s.keys.Runs(), s.keys.Latest()}, args...).Int()
	if err != nil {
		return 0, fmt.Errorf("trim history: %w", err)
	}
	return n, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// reply decodes a script's array reply into dst (*int64 or *string per
// element), so that a script whose reply changed shape fails with an error
// naming it instead of reading as code 0.
func reply(script string, res []any, dst ...any) error {
	if len(res) != len(dst) {
		return fmt.Errorf("script %s: reply %v has %d elements, want %d", script, res, len(res), len(dst))
	}
	for i, d := range dst {
		ok := false
		switch p := d.(type) {
		case *int64:
			*p, ok = res[i].(int64)
		case *string:
			*p, ok = res[i].(string)
		}
		if !ok {
			return fmt.Errorf("script %s: reply element %d is %T (%v), want %T", script, i+1, res[i], res[i], d)
		}
	}
	return nil
}
