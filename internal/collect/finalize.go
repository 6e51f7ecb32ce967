package collect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/clock"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/schema"
	"github.com/apmtel/apmtel/internal/telemetry"
)

// Finalizer closes, assembles and seals runs.
type Finalizer struct {
	Runs *run.Store
	// Registry names each task's plugin (which object its fragment goes to).
	Registry *telemetry.Registry
	// OptIn false seals full runs with their upload skipped (opt-out).
	OptIn  bool
	Logger zerolog.Logger
	// Now is the clock (the wall clock when nil).
	Now clock.Clock
}

// Finalized is what Finalize left.
type Finalized struct {
	Run run.Run
	// SealedNow is true for the call that sealed the run.
	SealedNow bool
	// Upload is true when the run's upload is outstanding: enqueue it (the
	// upload job's id makes a repeat harmless).
	Upload bool
}

// Finalize closes run id for reason (unless someone closed it first: their
// reason is the run's), assembles its snapshot and seals it. Every step can
// be repeated, so the "complete" and "deadline" jobs of a run, and their
// retries, may all run. A run that no longer exists gives run.ErrNotFound.
func (f *Finalizer) Finalize(ctx context.Context, id string, reason run.CloseReason) (Finalized, error) {
	now := f.Now.Now
	r, err := f.Runs.Get(ctx, id)
	if err != nil {
		return Finalized{}, err
	}
	if r.Status == run.StatusOpen {
		if reason != run.ReasonDeadline {
			reason = run.ReasonComplete
		}
		if _, err := f.Runs.Close(ctx, id, reason, now()); err != nil {
			return Finalized{}, err
		}
		if r, err = f.Runs.Get(ctx, id); err != nil {
			return Finalized{}, err
		}
	}
	if r.Status != run.StatusClosed {
		return f.done(r, false), nil
	}
	results, err := f.Runs.Results(ctx, id)
	if err != nil {
		return Finalized{}, err
	}
	var unfinished []run.TaskRecord
	for _, name := range r.Tasks {
		rec, ok := results[name]
		if ok && rec.Status.Final() {
			continue
		}
		rec.Task, rec.Status, rec.FinishedAt = name, run.TaskTimeout, now().UTC()
		rec.Deadline = run.DeadlineClosed
		if r.CloseReason == run.ReasonDeadline {
			rec.Deadline = run.DeadlineRun
		}
		if rec.Error != "" {
			rec.LastError = rec.Error
		}
		rec.Error = unfinishedMessage(r.CloseReason, rec.LastError)
		unfinished = append(unfinished, rec)
		results[name] = rec
	}
	lastGood, err := f.Runs.LastGood(ctx)
	if err != nil {
		return Finalized{}, fmt.Errorf("finalize %s: last good values: %w", id, err)
	}
	all, rep := AssembleAll(f.Registry, r.Tasks, results, lastGood)
	b, err := json.Marshal(all.APM)
	if err != nil {
		return Finalized{}, fmt.Errorf("finalize %s: encode snapshot: %w", id, err)
	}
	l := f.Logger.With().Str("run_id", id).Logger()
	var generic map[string]any
	if err := json.Unmarshal(b, &generic); err != nil {
		return Finalized{}, fmt.Errorf("finalize %s: decode snapshot for validation: %w", id, err)
	}
	probs := schema.Validate(generic)
	// The other plugins' objects are stored beside the snapshot (the
	// snapshot stays the APM object) and added to the document at upload.
	var plugins []byte
	if len(all.Plugins) > 0 {
		if plugins, err = json.Marshal(all.Plugins); err != nil {
			return Finalized{}, fmt.Errorf("finalize %s: encode plugin objects: %w", id, err)
		}
		var gp map[string]map[string]any
		if err := json.Unmarshal(plugins, &gp); err != nil {
			return Finalized{}, fmt.Errorf("finalize %s: decode plugin objects for validation: %w", id, err)
		}
		for name, obj := range gp {
			probs = append(probs, schema.ValidatePlugin(name, obj)...)
		}
	}
	if len(probs) > 0 {
		rep.SchemaProblems = schema.Summary(probs)
		l.Warn().Strs("fields", rep.SchemaProblems).Msg("payload has fields the schema does not map; they are sent anyway")
	}
	if len(rep.Problems) > 0 {
		l.Error().Strs("problems", rep.Problems).Msg("stored results could not be used; those tasks count as failed")
	}
	if w, err := identityWarning(ctx, f.Runs, r); err != nil {
		return Finalized{}, fmt.Errorf("finalize %s: previous identity: %w", id, err)
	} else if w != "" {
		rep.Warnings = append(rep.Warnings, w)
		l.Warn().Msg(w)
	}
	good := map[string]json.RawMessage{}
	for name, rec := range results {
		if rec.Status == run.TaskOK && !contains(rep.Failed, name) {
			good[name] = rec.Result
		}
	}
	sealed, err := f.Runs.Seal(ctx, r, run.Seal{At: now(), Unfinished: unfinished, Snapshot: b, Plugins: plugins, Report: rep,
		LastGood: good, Skip: r.SkipReason(f.OptIn, &rep)})
	if err != nil && !sealed {
		return Finalized{}, err
	}
	if err != nil {
		l.Warn().Err(err).Msg("history trim failed; retried at the next run")
	}
	if r, err = f.Runs.Get(ctx, id); err != nil {
		return Finalized{}, err
	}
	if sealed {
		ev := l.Info()
		if len(rep.Failed) > 0 {
			ev = l.Warn().Strs("failed", rep.Failed).Strs("carried_over", rep.CarriedOver)
		}
		ev.Int("tasks", len(r.Tasks)).Str("reason", string(r.CloseReason)).Str("kind", string(r.Kind)).
			Str("upload", r.Upload.String()).Msg("run sealed")
	}
	return f.done(r, sealed), nil
}

func (f *Finalizer) done(r run.Run, sealedNow bool) Finalized {
	return Finalized{Run: r, SealedNow: sealedNow,
		Upload: r.Status == run.StatusSealed && !r.Upload.State.Ended() && r.SkipReason(f.OptIn, nil) == ""}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// unfinishedMessage explains why a task without a final record has none.
func unfinishedMessage(reason run.CloseReason, lastErr string) string {
	msg := "run closed before the task finished"
	if reason == run.ReasonDeadline {
		msg = "run reached its deadline (APMTEL_RUN_DEADLINE) before the task finished"
	}
	if lastErr != "" {
		msg += "; last error: " + lastErr
	}
	return msg
}

// IsGone reports whether err says the run no longer exists (trimmed or expired).
func IsGone(err error) bool { return errors.Is(err, run.ErrNotFound) }
