package workers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/logs"
	"github.com/apmtel/apmtel/internal/schema"
	"github.com/apmtel/apmtel/internal/store"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/internal/uploader"
	"github.com/apmtel/apmtel/jobs"
)

// Report is the finalize summary stored with a run (not part of the payload).
type Report struct {
	Tasks map[string]TaskSummary `json:"tasks"`
	// Failed lists tasks without a result in this run (failed, timeout, cancelled).
	Failed []string `json:"failed"`
	// CarriedOver lists failed tasks whose previous good value was sent instead.
	CarriedOver []string `json:"carried_over"`
	// SchemaProblems lists payload fields the schema lacks or types it
	// contradicts; the fields are still sent, as Kibana does.
	SchemaProblems []string `json:"schema_problems,omitempty"`
}

// TaskSummary is one task's line in the report.
type TaskSummary struct {
	Status   string   `json:"status"`
	TookMS   int64    `json:"took_ms"`
	Attempt  int      `json:"attempt,omitempty"`
	Error    string   `json:"error,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// Assemble merges the run's results, in the run's task order, into the
// telemetry object. A task that failed keeps its last good fragment when
// there is one (Kibana erases it); tasks.<name>.took.ms is written only for
// tasks that succeeded in this run, as Kibana does.
func Assemble(tasks []string, results map[string]store.TaskRecord, lastGood map[string]json.RawMessage) (map[string]any, Report, error) {
	out := map[string]any{}
	rep := Report{Tasks: map[string]TaskSummary{}, Failed: []string{}, CarriedOver: []string{}}
	for _, name := range tasks {
		rec, ok := results[name]
		if !ok {
			rec = store.TaskRecord{Task: name, Status: store.TaskTimeout, Error: "no result"}
		}
		rep.Tasks[name] = TaskSummary{Status: rec.Status, TookMS: rec.TookMS, Attempt: rec.Attempt, Error: rec.Error, Warnings: rec.Warnings}
		if rec.Status == store.TaskOK {
			frag, err := decodeFragment(rec.Result)
			if err != nil {
				return nil, rep, fmt.Errorf("task %s: stored result: %w", name, err)
			}
			telemetry.Merge(out, telemetry.WithTook(frag, name, rec.TookMS))
			continue
		}
		rep.Failed = append(rep.Failed, name)
		if prev, ok := lastGood[name]; ok {
			frag, err := decodeFragment(prev)
			if err != nil {
				continue // a corrupt old value is not worth failing the run for
			}
			telemetry.Merge(out, frag)
			rep.CarriedOver = append(rep.CarriedOver, name)
		}
	}
	return out, rep, nil
}

func decodeFragment(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// Finalize closes a run, marks unfinished tasks, assembles and stores the
// snapshot, and enqueues the upload. Every step is idempotent, so the
// "complete" and "deadline" jobs of a run, and their retries, may all run.
func (h *Handlers) Finalize(ctx context.Context, t *asynq.Task) error {
	p, err := jobs.DecodeRun(t.Payload())
	if err != nil {
		return skip(fmt.Errorf("finalize: %w", err))
	}
	note(ctx, p.RunID, "")
	l := logs.Named(h.d.Logger, logs.Finalize).With().Str("run_id", p.RunID).Logger()
	run, err := h.d.Store.GetRun(ctx, p.RunID)
	if errors.Is(err, store.ErrNotFound) {
		return skip(fmt.Errorf("finalize: %w", err))
	}
	if err != nil {
		return fmt.Errorf("finalize: %w", err)
	}
	reason := p.Reason
	if reason == "" {
		reason = "complete"
	}
	if run.Status == store.StatusFinalized {
		if run.CloseReason == "cancelled" {
			return nil
		}
		return h.enqueueUpload(ctx, run.ID)
	}
	if _, err := h.d.Store.Close(ctx, run.ID, reason, h.d.Now()); err != nil {
		return fmt.Errorf("finalize: %w", err)
	}
	// Another finalize may have closed the run first (the deadline racing the
	// last result, or a cancel): its reason is the run's.
	if run, err = h.d.Store.GetRun(ctx, run.ID); err != nil {
		return fmt.Errorf("finalize: %w", err)
	}
	reason = run.CloseReason
	results, err := h.d.Store.Results(ctx, run.ID)
	if err != nil {
		return fmt.Errorf("finalize: %w", err)
	}
	for _, name := range run.Tasks {
		rec, ok := results[name]
		if ok && rec.Final() {
			continue
		}
		rec.Task, rec.Status = name, store.TaskTimeout
		if reason == "cancelled" {
			rec.Status = store.TaskCancelled
		}
		rec.Error, rec.FinishedAt = unfinishedMessage(reason, rec.Error), h.d.Now().UTC()
		if err := h.d.Store.PutResult(ctx, run.ID, rec); err != nil {
			return fmt.Errorf("finalize: %w", err)
		}
		results[name] = rec
	}
	lastGood, err := h.d.Store.LastGood(ctx)
	if err != nil {
		return fmt.Errorf("finalize: last good values: %w", err)
	}
	snap, rep, err := Assemble(run.Tasks, results, lastGood)
	if err != nil {
		// Corrupt stored data cannot be fixed by retrying.
		return skip(fmt.Errorf("finalize: %w", err))
	}
	b, err := json.Marshal(snap)
	if err != nil {
		return skip(fmt.Errorf("finalize: encode snapshot: %w", err))
	}
	var generic map[string]any
	_ = json.Unmarshal(b, &generic)
	if probs := schema.Validate(generic); len(probs) > 0 {
		rep.SchemaProblems = schema.Summary(probs)
		l.Warn().Strs("fields", rep.SchemaProblems).Msg("payload has fields the schema does not map; they are sent anyway")
	}
	if err := h.d.Store.PutSnapshot(ctx, run, b); err != nil {
		return fmt.Errorf("finalize: %w", err)
	}
	good := map[string]json.RawMessage{}
	for name, rec := range results {
		if rec.Status == store.TaskOK {
			good[name] = rec.Result
		}
	}
	if err := h.d.Store.SetLastGood(ctx, run, good); err != nil {
		return fmt.Errorf("finalize: %w", err)
	}
	rb, _ := json.Marshal(rep)
	// finalized_at is written once: it is the payload's timestamp, so every
	// upload of the run writes the same document.
	if err := h.d.Store.SetFieldIfAbsent(ctx, run.ID, "finalized_at", h.d.Now().UTC().Format(time.RFC3339Nano)); err != nil {
		return fmt.Errorf("finalize: %w", err)
	}
	if err := h.d.Store.SetFields(ctx, run.ID, "status", store.StatusFinalized, "report", string(rb)); err != nil {
		return fmt.Errorf("finalize: %w", err)
	}
	if err := h.d.Store.Trim(ctx); err != nil {
		l.Warn().Err(err).Msg("history trim failed; retried at the next run")
	}
	ev := l.Info()
	if len(rep.Failed) > 0 {
		ev = l.Warn().Strs("failed", rep.Failed).Strs("carried_over", rep.CarriedOver)
	}
	ev.Int("tasks", len(run.Tasks)).Str("reason", reason).Msg("run finalized")
	if reason == "cancelled" {
		return h.d.Store.SetFields(ctx, run.ID, "upload", "skipped", "upload_detail", "run cancelled")
	}
	return h.enqueueUpload(ctx, run.ID)
}

func (h *Handlers) enqueueUpload(ctx context.Context, runID string) error {
	return h.enqueue(ctx, func() (*asynq.Task, error) { return jobs.NewUpload(jobs.RunPayload{RunID: runID}) })
}

// unfinishedMessage explains why a task without a final record has none.
func unfinishedMessage(reason, lastErr string) string {
	msg := "run closed before the task finished"
	switch reason {
	case "deadline":
		msg = "run reached its deadline before the task finished"
	case "cancelled":
		msg = "run was cancelled before the task finished"
	}
	if lastErr != "" {
		msg += "; last error: " + lastErr
	}
	return msg
}

// Upload ships a finalized run's payload.
func (h *Handlers) Upload(ctx context.Context, t *asynq.Task) error {
	p, err := jobs.DecodeRun(t.Payload())
	if err != nil {
		return skip(fmt.Errorf("upload: %w", err))
	}
	note(ctx, p.RunID, "")
	l := logs.Named(h.d.Logger, logs.Upload).With().Str("run_id", p.RunID).Logger()
	run, err := h.d.Store.GetRun(ctx, p.RunID)
	if errors.Is(err, store.ErrNotFound) {
		return skip(fmt.Errorf("upload: %w", err))
	}
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	if run.Status != store.StatusFinalized {
		return fmt.Errorf("upload: run %s is %s, not finalized", run.ID, run.Status)
	}
	if !h.d.Config.OptIn {
		l.Warn().Msg("telemetry opt-in is off (APMTEL_OPT_IN=false): payload collected but not sent")
		return h.d.Store.SetFields(ctx, run.ID, "upload", "skipped", "upload_detail", "opt-in is off")
	}
	snap, err := h.d.Store.Snapshot(ctx, run.ID)
	if errors.Is(err, store.ErrNotFound) {
		return skip(fmt.Errorf("upload: %w", err))
	}
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	info, err := uploader.Describe(ctx, h.d.Source, h.d.Config.SearchTimeout)
	if err != nil {
		return fmt.Errorf("upload: source %w", err)
	}
	env, err := uploader.Build(info, run.FinalizedAt, snap)
	if err != nil {
		return skip(fmt.Errorf("upload: %w", err))
	}
	id := uploader.DocID(info.ClusterUUID, run.ID)
	where, err := h.d.Sink.Put(ctx, id, env)
	if err != nil {
		_ = h.d.Store.SetFields(ctx, run.ID, "upload", "retrying", "upload_detail", err.Error())
		if es.IsPermanent(err) {
			_ = h.d.Store.SetFields(ctx, run.ID, "upload", "failed", "upload_detail", err.Error())
			return skip(fmt.Errorf("upload: %w", err))
		}
		return fmt.Errorf("upload: %w", err)
	}
	status := "uploaded"
	if _, ok := h.d.Sink.(uploader.FileSink); ok {
		status = "written"
	}
	l.Info().Str("doc_id", id).Str("to", where).Msg("payload " + status)
	if err := h.d.Store.SetFields(ctx, run.ID, "upload", status, "upload_detail", where); err != nil {
		return err
	}
	if err := h.d.Store.Trim(ctx); err != nil {
		l.Warn().Err(err).Msg("history trim failed; retried later")
	}
	return nil
}
