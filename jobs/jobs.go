package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/apmtel/apmtel/internal/keys"
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
	RunID string `json:"run_id"`
	Task  string `json:"task"`
}

// RunPayload names a run (finalize, upload).
type RunPayload struct {
	RunID string `json:"run_id"`
	// Reason tells why finalize was enqueued: "complete", "deadline" or "cancelled".
	Reason string `json:"reason,omitempty"`
}

// Options are the per-deployment knobs of job construction.
type Options struct {
	MaxRetry int
	Timeout  time.Duration
}

// NewCollect returns the collect job of (run, task).
func NewCollect(p CollectPayload, o Options) (*asynq.Task, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	b, _ := json.Marshal(p)
	return asynq.NewTask(TypeCollect, b,
		asynq.Queue(QueueCollect),
		asynq.TaskID(CollectID(p.RunID, p.Task)),
		asynq.MaxRetry(o.MaxRetry),
		asynq.Timeout(o.Timeout),
		asynq.Retention(Retention),
	), nil
}

// CollectID is the asynq task id of (run, task).
func CollectID(runID, task string) string { return "collect:" + runID + ":" + task }

// NewFinalize returns a finalize job; at is when it may run (zero: now).
// The "complete" and "deadline" jobs of a run have distinct ids, and
// finalizing is idempotent, so both may run.
func NewFinalize(p RunPayload, at time.Time) (*asynq.Task, error) {
	if err := keys.ValidRunID(p.RunID); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPayload, err)
	}
	if p.Reason != "complete" && p.Reason != "deadline" && p.Reason != "cancelled" {
		return nil, fmt.Errorf("%w: finalize reason %q", ErrBadPayload, p.Reason)
	}
	b, _ := json.Marshal(p)
	opts := []asynq.Option{
		asynq.Queue(QueueControl),
		asynq.TaskID("finalize:" + p.RunID + ":" + p.Reason),
		asynq.MaxRetry(10),
		asynq.Timeout(2 * time.Minute),
		asynq.Retention(Retention),
	}
	if !at.IsZero() {
		opts = append(opts, asynq.ProcessAt(at))
	}
	return asynq.NewTask(TypeFinalize, b, opts...), nil
}

// NewUpload returns the upload job of a run. Uploads retry for long: the
// telemetry cluster may be down for hours and the document id makes a
// repeated upload harmless.
func NewUpload(p RunPayload) (*asynq.Task, error) {
	if err := keys.ValidRunID(p.RunID); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPayload, err)
	}
	b, _ := json.Marshal(RunPayload{RunID: p.RunID})
	return asynq.NewTask(TypeUpload, b,
		asynq.Queue(QueueControl),
		asynq.TaskID(UploadID(p.RunID)),
		asynq.MaxRetry(20),
		asynq.Timeout(2*time.Minute),
		asynq.Retention(Retention),
	), nil
}

// UploadID is the asynq task id of a run's upload.
func UploadID(runID string) string { return "upload:" + runID }

func (p CollectPayload) validate() error {
	if err := keys.ValidRunID(p.RunID); err != nil {
		return fmt.Errorf("%w: %w", ErrBadPayload, err)
	}
	if p.Task == "" {
		return fmt.Errorf("%w: task is empty", ErrBadPayload)
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
	if err := keys.ValidRunID(p.RunID); err != nil {
		return p, fmt.Errorf("%w: %w", ErrBadPayload, err)
	}
	return p, nil
}
