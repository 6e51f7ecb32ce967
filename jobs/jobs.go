package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
)

// Job type names. Never rename one.
const (
	// TypeCollect runs one telemetry task of one run.
	TypeCollect = "telemetry:collect"
	// TypeFinalize assembles a run's snapshot once all tasks finished or its deadline passed.
	TypeFinalize = "telemetry:finalize"
	// TypeUpload ships a finalized run's payload to the telemetry cluster.
	TypeUpload = "telemetry:upload"
)

// Queues and their weights: control jobs are few and short and must not wait
// behind a long collect backlog.
const (
	QueueCollect = "telemetry"
	QueueControl = "telemetry-control"
)

// Queues returns the queue weights for asynq.Config.Queues.
func Queues() map[string]int { return map[string]int{QueueCollect: 3, QueueControl: 7} }

// MaxPayloadBytes bounds a payload; anything larger is rejected as garbage.
const MaxPayloadBytes = 4096

// Retention keeps completed jobs so that their task ids keep deduplicating
// enqueues of the same run for a day.
const Retention = 24 * time.Hour

// ErrBadPayload marks a payload that can never be processed; handlers wrap
// it with asynq.SkipRetry.
var ErrBadPayload = errors.New("bad payload")

// CollectPayload names a run and one of its tasks.
type CollectPayload struct {
	// Source names the source cluster (keys.Space.Source); empty means the
	// default one, so jobs written before it existed still decode.
	Source string `json:"source,omitempty"`
	RunID  string `json:"run_id"`
	Task   string `json:"task"`
}

// RunPayload names a run (finalize, upload).
type RunPayload struct {
	Source string `json:"source,omitempty"`
	RunID  string `json:"run_id"`
	// Reason tells why finalize was enqueued: "complete" or "deadline".
	Reason string `json:"reason,omitempty"`
}

// Finalize reasons.
const (
	ReasonComplete = string(run.ReasonComplete)
	ReasonDeadline = string(run.ReasonDeadline)
)

// NewCollect returns the collect job of (run, task).
func NewCollect(p CollectPayload, t config.Timing) (*asynq.Task, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	b, _ := json.Marshal(p)
	return asynq.NewTask(TypeCollect, b,
		asynq.Queue(QueueCollect),
		asynq.TaskID(CollectID(p.Source, p.RunID, p.Task)),
		asynq.MaxRetry(t.CollectMaxRetry),
		asynq.Timeout(t.CollectJobTimeout),
		asynq.Retention(Retention),
	), nil
}

func src(s string) string { return keys.SourceOrDefault(s) }

// CollectID is the asynq task id of (source, run, task).
func CollectID(source, runID, task string) string {
	return "collect:" + src(source) + ":" + runID + ":" + task
}

// FinalizeID is the asynq task id of a run's finalize for reason.
func FinalizeID(source, runID, reason string) string {
	return "finalize:" + src(source) + ":" + runID + ":" + reason
}

// NewFinalize returns a finalize job; at is when it may run (zero: now).
// The "complete" and "deadline" jobs of a run have distinct ids, and
// finalizing is idempotent, so both may run.
func NewFinalize(p RunPayload, at time.Time, t config.Timing) (*asynq.Task, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if p.Reason != ReasonComplete && p.Reason != ReasonDeadline {
		return nil, fmt.Errorf("%w: finalize reason %q", ErrBadPayload, p.Reason)
	}
	b, _ := json.Marshal(p)
	opts := []asynq.Option{
		asynq.Queue(QueueControl),
		asynq.TaskID(FinalizeID(p.Source, p.RunID, p.Reason)),
		asynq.MaxRetry(t.FinalizeMaxRetry),
		asynq.Timeout(t.FinalizeJobTimeout),
		asynq.Retention(Retention),
	}
	if !at.IsZero() {
		opts = append(opts, asynq.ProcessAt(notBefore(at)))
	}
	return asynq.NewTask(TypeFinalize, b, opts...), nil
}

// notBefore rounds at up to a whole second. asynq keeps a scheduled job's
// time in whole seconds (its score is ProcessAt.Unix()) and moves it to
// pending once now.Unix() reaches that score, so a job for 12:00:05.9 runs
// from 12:00:05.0: a run's deadline finalize would seal it up to a second
// before its deadline. Rounded up, the job never runs early.
func notBefore(at time.Time) time.Time {
	if t := at.Truncate(time.Second); !t.Equal(at) {
		return t.Add(time.Second)
	}
	return at
}

// NewUpload returns the upload job of a run. resend names a re-send
// (`apmtel upload RUN`): 0 is the run's own upload, any other value gives
// the job an id of its own, since the first one is retained. Uploads retry
// for the whole APMTEL_UPLOAD_RETRY_WINDOW; the document id makes a repeated
// upload harmless.
func NewUpload(p RunPayload, resend int64, t config.Timing) (*asynq.Task, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	b, _ := json.Marshal(RunPayload{Source: p.Source, RunID: p.RunID})
	id := UploadID(p.Source, p.RunID)
	if resend != 0 {
		id += ":resend-" + strconv.FormatInt(resend, 10)
	}
	return asynq.NewTask(TypeUpload, b,
		asynq.Queue(QueueControl),
		asynq.TaskID(id),
		asynq.MaxRetry(t.UploadMaxRetry),
		asynq.Timeout(t.UploadJobTimeout),
		asynq.Retention(Retention),
	), nil
}

// UploadID is the asynq task id of a run's upload.
func UploadID(source, runID string) string { return "upload:" + src(source) + ":" + runID }

// Enqueuer is the part of asynq.Client that enqueues.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Enqueue enqueues the job built by a constructor (t, err); a job with its
// id already there is success, since every job's id says what it does.
func Enqueue(ctx context.Context, e Enqueuer, t *asynq.Task, err error) error {
	if err != nil {
		return err
	}
	_, err = e.EnqueueContext(ctx, t)
	if errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
		return nil
	}
	return err
}

func validSource(s string) error {
	if s == "" {
		return nil
	}
	if err := keys.ValidSource(s); err != nil {
		return fmt.Errorf("%w: %w", ErrBadPayload, err)
	}
	return nil
}

func (p CollectPayload) validate() error {
	if err := validSource(p.Source); err != nil {
		return err
	}
	if err := keys.ValidRunID(p.RunID); err != nil {
		return fmt.Errorf("%w: %w", ErrBadPayload, err)
	}
	if p.Task == "" {
		return fmt.Errorf("%w: task is empty", ErrBadPayload)
	}
	return nil
}

func (p RunPayload) validate() error {
	if err := validSource(p.Source); err != nil {
		return err
	}
	if err := keys.ValidRunID(p.RunID); err != nil {
		return fmt.Errorf("%w: %w", ErrBadPayload, err)
	}
	return nil
}

func decodeStrict(b []byte, v any) error {
	if len(b) > MaxPayloadBytes {
		return fmt.Errorf("%w: %d bytes exceeds the limit of %d", ErrBadPayload, len(b), MaxPayloadBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrBadPayload, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data after JSON object", ErrBadPayload)
	}
	return nil
}

// DecodeCollect parses and checks a collect payload.
func DecodeCollect(b []byte) (CollectPayload, error) {
	var p CollectPayload
	if err := decodeStrict(b, &p); err != nil {
		return p, err
	}
	return p, p.validate()
}

// DecodeRun parses and checks a finalize or upload payload.
func DecodeRun(b []byte) (RunPayload, error) {
	var p RunPayload
	if err := decodeStrict(b, &p); err != nil {
		return p, err
	}
	return p, p.validate()
}
