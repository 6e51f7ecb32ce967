package run

import (
	"encoding/json"
	"time"

	"github.com/apmtel/apmtel/internal/config"
)

// Status is where a run is in its lifecycle.
type Status string

const (
	// StatusOpen: the run accepts task results. Created by Create.
	StatusOpen Status = "open"
	// StatusClosed: no more results are accepted (every task finished, or
	// the deadline passed); the run is being sealed. Set by Close.
	StatusClosed Status = "closed"
	// StatusSealed: the snapshot, report and last good values are stored.
	// Terminal. Set by Seal. Trimmed from the history once its upload ended
	// and newer runs exceed the history limit, or when its TTL runs out.
	StatusSealed Status = "sealed"
	// StatusCancelled: an operator cancelled the open run; no snapshot, no
	// upload. Terminal. Set by Cancel.
	StatusCancelled Status = "cancelled"
)

// Terminal reports whether the run can change no more.
func (s Status) Terminal() bool { return s == StatusSealed || s == StatusCancelled }

// Kind says what a run is for.
type Kind string

const (
	// KindFull collects every task; it becomes the latest snapshot and is
	// uploaded. Scheduled runs and `apmtel run` without --task.
	KindFull Kind = "full"
	// KindPartial collects some tasks (`apmtel run --task …`): reported, its
	// good results refresh the last good values, never latest, never uploaded.
	KindPartial Kind = "partial"
	// KindDryRun collects every task but never uploads (`apmtel run --no-upload`).
	KindDryRun Kind = "dry-run"
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k == KindFull || k == KindPartial || k == KindDryRun }

// CloseReason says why a run stopped accepting results.
type CloseReason string

const (
	ReasonComplete  CloseReason = "complete"
	ReasonDeadline  CloseReason = "deadline"
	ReasonCancelled CloseReason = "cancelled"
)

// Valid reports whether r is a known reason.
func (r CloseReason) Valid() bool {
	return r == ReasonComplete || r == ReasonDeadline || r == ReasonCancelled
}

// TaskStatus is one task's state in a run.
type TaskStatus string

const (
	// TaskQueued: no attempt has started (the task has no record yet).
	TaskQueued TaskStatus = "queued"
	// TaskRunning: an attempt is running on a worker.
	TaskRunning TaskStatus = "running"
	// TaskRetrying: an attempt failed and another one will follow.
	TaskRetrying TaskStatus = "retrying"
	TaskOK       TaskStatus = "ok"
	TaskFailed   TaskStatus = "failed"
	// TaskTimeout: a deadline ended the task (see TaskRecord.Deadline), or
	// the run closed before it finished.
	TaskTimeout   TaskStatus = "timeout"
	TaskCancelled TaskStatus = "cancelled"
	// TaskAbandoned is an attempt's status only: the run was sealed while
	// the attempt was still marked running (its worker died or was paused
	// past its lease, and another attempt, or the run's end, took over).
	// Set by Seal with AbandonedReason; a task's record never has it.
	TaskAbandoned TaskStatus = "abandoned"
)

// AbandonedReason is the error of an abandoned attempt.
const AbandonedReason = "abandoned: the run was sealed while this attempt was still running (its worker was lost or paused past its lease)"

// Final reports whether s is a task's last word in its run.
func (s TaskStatus) Final() bool {
	return s == TaskOK || s == TaskFailed || s == TaskTimeout || s == TaskCancelled
}

// Deadline names which deadline ended a task.
type Deadline string

const (
	DeadlineSearch Deadline = "search timeout" // one request (APMTEL_SEARCH_TIMEOUT)
	DeadlineTask   Deadline = "task timeout"   // one attempt (APMTEL_TASK_TIMEOUT)
	DeadlineRun    Deadline = "run deadline"   // the whole run (APMTEL_RUN_DEADLINE)
	DeadlineCancel Deadline = "cancelled"      // an operator's cancel
	DeadlineClosed Deadline = "run closed"     // the run closed before the task finished
)

// UploadState is where a run's upload is.
type UploadState string

const (
	// UploadPending: not attempted yet (or re-send requested).
	UploadPending UploadState = "pending"
	// UploadRetrying: an attempt failed; Upload.Attempt and Upload.Error tell which and why.
	UploadRetrying UploadState = "retrying"
	// UploadUploaded: indexed into the telemetry cluster.
	UploadUploaded UploadState = "uploaded"
	// UploadWritten: written as a file (no telemetry cluster configured).
	UploadWritten UploadState = "written"
	// UploadSkipped: never sent on purpose; Upload.Detail holds the SkipReason.
	UploadSkipped UploadState = "skipped"
	// UploadFailed: the retry window or the attempts ran out, or the error is
	// permanent; `apmtel upload RUN` may send it again.
	UploadFailed UploadState = "failed"
)

// Ended reports whether no upload attempt is outstanding.
func (s UploadState) Ended() bool {
	return s == UploadUploaded || s == UploadWritten || s == UploadSkipped || s == UploadFailed
}

// Delivered reports whether the payload reached its sink.
func (s UploadState) Delivered() bool { return s == UploadUploaded || s == UploadWritten }

// SkipReason says why a run is not uploaded.
type SkipReason string

const (
	SkipOptOut    SkipReason = "opt-out"
	SkipDryRun    SkipReason = "dry run"
	SkipPartial   SkipReason = "partial"
	SkipCancelled SkipReason = "cancelled"
	// SkipNothingCollected: a full run in which no task succeeded. Its
	// document would hold only values carried over from earlier runs, stamped
	// now, so it is never sent.
	SkipNothingCollected SkipReason = "nothing collected"
)

// Upload is a run's upload state.
type Upload struct {
	State UploadState `json:"state"`
	// Attempt is the number of attempts made; MaxAttempts the budget.
	Attempt     int `json:"attempt,omitempty"`
	MaxAttempts int `json:"max_attempts,omitempty"`
	// Error is the last attempt's error (never a secret: errors come from the
	// sink, which never includes credentials).
	Error string `json:"error,omitempty"`
	// Detail is where the document went, or the SkipReason.
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at,omitzero"`
	// Since is when the upload last became pending (sealed, or re-sent): the
	// start of its retry window.
	Since time.Time `json:"since,omitzero"`
}

// String renders the upload for a table: "uploaded", "skipped (dry run)",
// "retrying 3/20: …".
func (u Upload) String() string {
	switch u.State {
	case UploadSkipped:
		return "skipped (" + u.Detail + ")"
	case UploadRetrying:
		s := "retrying"
		if u.Attempt > 0 {
			s += " " + itoa(u.Attempt)
			if u.MaxAttempts > 0 {
				s += "/" + itoa(u.MaxAttempts)
			}
		}
		return s
	case "":
		return "-"
	}
	return string(u.State)
}

// Run is a run's metadata.
type Run struct {
	ID          string         `json:"id"`
	Source      string         `json:"source"`
	Trigger     string         `json:"trigger"`
	Kind        Kind           `json:"kind"`
	Status      Status         `json:"status"`
	CreatedAt   time.Time      `json:"created_at"`
	Deadline    time.Time      `json:"deadline"`
	Tasks       []string       `json:"tasks"`
	Indices     config.Indices `json:"indices"`
	ClosedAt    time.Time      `json:"closed_at,omitzero"`
	CloseReason CloseReason    `json:"close_reason,omitempty"`
	// SealedAt is written once, by Seal: it is the payload's timestamp, so
	// every upload of the run writes the same document.
	SealedAt time.Time `json:"sealed_at,omitzero"`
	Upload   Upload    `json:"upload"`
	// SourceInfo is the source cluster's identity, captured once when the
	// run's first job starts (uploader.Source as JSON).
	SourceInfo json.RawMessage `json:"source_info,omitempty"`
	Report     *Report         `json:"report,omitempty"`
	// Errands are the run's work besides its tasks (the source identity),
	// in start order.
	Errands []Errand `json:"errands,omitempty"`
}

// Errand returns the run's errand of that name, if it has one.
func (r Run) Errand(name string) (Errand, bool) {
	for _, e := range r.Errands {
		if e.Name == name {
			return e, true
		}
	}
	return Errand{}, false
}

// UploadSince is when the run's upload last became due: its seal, or its
// re-send. It starts the upload's retry window, and it is the document's
// cacheDetails.fetchedAt, so every attempt of one send writes the same
// document and the console shows exactly that document.
func (r Run) UploadSince() time.Time {
	if !r.Upload.Since.IsZero() {
		return r.Upload.Since
	}
	return r.SealedAt
}

// Uploadable reports whether the run's kind is ever uploaded.
func (r Run) Uploadable() bool { return r.Kind == KindFull }

// SkipReason is the one answer to "is this run never uploaded, and why":
// "" for a run that is sent. Finalize stores it when it seals, the upload
// job and the console read it from here, so they cannot disagree. rep is
// the run's seal report (r.Report when nil); a run without one (not sealed
// yet) is judged on its kind, its status and optIn alone.
func (r Run) SkipReason(optIn bool, rep *Report) SkipReason {
	if rep == nil {
		rep = r.Report
	}
	switch {
	case r.Status == StatusCancelled:
		return SkipCancelled
	case r.Kind == KindPartial:
		return SkipPartial
	case r.Kind == KindDryRun:
		return SkipDryRun
	case !optIn:
		return SkipOptOut
	case rep != nil && !rep.Collected():
		return SkipNothingCollected
	}
	return ""
}

// Collected reports whether at least one task of the run produced a result
// (a run whose every value is carried over collected nothing).
func (rep Report) Collected() bool {
	for _, t := range rep.Tasks {
		if t.Status == TaskOK {
			return true
		}
	}
	return false
}

// TaskRecord is one task's current record in a run.
type TaskRecord struct {
	Task   string     `json:"task"`
	Status TaskStatus `json:"status"`
	TookMS int64      `json:"took_ms"`
	Error  string     `json:"error,omitempty"`
	// Deadline names the deadline that ended the task, when one did.
	Deadline Deadline `json:"deadline,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// Attempt is the attempt this record is of; MaxAttempts the budget.
	Attempt     int       `json:"attempt"`
	MaxAttempts int       `json:"max_attempts,omitempty"`
	Worker      string    `json:"worker,omitempty"`
	QueuedAt    time.Time `json:"queued_at,omitzero"`
	StartedAt   time.Time `json:"started_at,omitzero"`
	FinishedAt  time.Time `json:"finished_at,omitzero"`
	// LastError is the previous attempt's error while the task retries.
	LastError string          `json:"last_error,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	RequestStats
}

// Attempt is one attempt of one task: a bar of the run's timeline.
type Attempt struct {
	Task       string     `json:"task"`
	Attempt    int        `json:"attempt"`
	Worker     string     `json:"worker,omitempty"`
	Status     TaskStatus `json:"status"`
	QueuedAt   time.Time  `json:"queued_at,omitzero"`
	StartedAt  time.Time  `json:"started_at,omitzero"`
	FinishedAt time.Time  `json:"finished_at,omitzero"`
	TookMS     int64      `json:"took_ms,omitempty"`
	Error      string     `json:"error,omitempty"`
	RequestStats
}

// Report is the seal summary stored with a run (not part of the payload).
type Report struct {
	Tasks map[string]TaskSummary `json:"tasks"`
	// Failed lists tasks without a result in this run (failed, timeout, cancelled).
	Failed []string `json:"failed"`
	// CarriedOver lists failed tasks whose previous good value was sent instead.
	CarriedOver []string `json:"carried_over"`
	// SchemaProblems lists payload fields the schema lacks or types it
	// contradicts; the fields are still sent, as Kibana does.
	SchemaProblems []string `json:"schema_problems,omitempty"`
	// Problems lists stored data that could not be used (a corrupt record).
	Problems []string `json:"problems,omitempty"`
	// Warnings are things about the run an operator should look at, none
	// of which changes the payload: the source answering with another
	// cluster_uuid than the cluster's previous run.
	Warnings []string `json:"warnings,omitempty"`
}

// TaskSummary is one task's line in the report.
type TaskSummary struct {
	Status   TaskStatus `json:"status"`
	TookMS   int64      `json:"took_ms"`
	Attempt  int        `json:"attempt,omitempty"`
	Worker   string     `json:"worker,omitempty"`
	Error    string     `json:"error,omitempty"`
	Warnings []string   `json:"warnings,omitempty"`
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// Outcome sums up how an ended run went, for filters and metrics.
type Outcome string

const (
	// OutcomeOK: sealed with every task ok.
	OutcomeOK Outcome = "ok"
	// OutcomeFailed: sealed with at least one task without a result.
	OutcomeFailed Outcome = "failed"
	// OutcomeCancelled: cancelled.
	OutcomeCancelled Outcome = "cancelled"
)

// Outcome returns how r went, or "" while it has not ended.
func (r Run) Outcome() Outcome {
	switch r.Status {
	case StatusCancelled:
		return OutcomeCancelled
	case StatusSealed:
		if r.Report != nil && len(r.Report.Failed) > 0 {
			return OutcomeFailed
		}
		return OutcomeOK
	}
	return ""
}
