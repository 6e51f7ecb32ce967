package run

import (
	"sort"
	"time"
)

// Breakdown says where a run's wall time went: the steps of its critical
// path — from the run's creation through the attempt that finished last to
// the upload's end — which add up to the wall time, and each task's and
// errand's share. It is computed from what the run stores (the attempts'
// times and request figures, closed_at, sealed_at, the upload's time), so
// any reader (console, `run --wait --json`, the benchmark) gets the same.
type Breakdown struct {
	// WallMS is created → upload ended, or → sealed when the upload has not
	// ended (skipped uploads end at the seal).
	WallMS int64 `json:"wall_ms"`
	// Critical is the task whose final attempt finished last.
	Critical string      `json:"critical,omitempty"`
	Steps    []Step      `json:"steps"`
	Tasks    []TaskShare `json:"tasks"`
	Errands  []Errand    `json:"errands,omitempty"`
}

// Step is one part of the critical path.
type Step struct {
	Name string `json:"name"`
	MS   int64  `json:"ms"`
}

// Names of the critical path's steps, in order.
const (
	StepPickup   = "enqueue → pickup"
	StepJobSlot  = "wait for a job slot"
	StepCapOnly  = "task: waiting for the search cap only"
	StepAtSource = "task: requests at the source"
	StepOwnWork  = "task: own work (encode, decode, merge)"
	StepErrand   = "task's job held by the source identity errand"
	StepRecord   = "record → finalize starts"
	StepFinalize = "finalize (assemble, seal)"
	StepUpload   = "upload (enqueue → delivered)"
)

// TaskShare is one task's final attempt in the breakdown.
type TaskShare struct {
	Task    string     `json:"task"`
	Attempt int        `json:"attempt"`
	Worker  string     `json:"worker,omitempty"`
	Status  TaskStatus `json:"status"`
	// StartMS and EndMS are the attempt's start and finish, from the run's creation.
	StartMS int64 `json:"start_ms"`
	EndMS   int64 `json:"end_ms"`
	// PickupMS + JobSlotMS is the attempt's wait in the queue: JobSlotMS the
	// part every job slot of its worker was busy, PickupMS the rest.
	PickupMS  int64 `json:"pickup_ms"`
	JobSlotMS int64 `json:"job_slot_ms"`
	TookMS    int64 `json:"took_ms"`
	RequestStats
}

// ms is d in whole milliseconds, never negative.
func ms(d time.Duration) int64 { return max(d.Milliseconds(), 0) }

// BreakdownOf computes r's breakdown from its attempts (Store.Attempts).
func BreakdownOf(r Run, attempts []Attempt) Breakdown {
	b := Breakdown{Errands: r.Errands}
	// The final attempt of each task: the highest attempt number.
	final := map[string]Attempt{}
	for _, a := range attempts {
		if cur, ok := final[a.Task]; !ok || a.Attempt > cur.Attempt {
			final[a.Task] = a
		}
	}
	var crit Attempt
	for _, name := range r.Tasks {
		a, ok := final[name]
		if !ok || a.StartedAt.IsZero() {
			continue
		}
		slot, pickup := queueWait(a, attempts)
		b.Tasks = append(b.Tasks, TaskShare{Task: a.Task, Attempt: a.Attempt, Worker: a.Worker, Status: a.Status,
			StartMS: ms(a.StartedAt.Sub(r.CreatedAt)), EndMS: ms(a.FinishedAt.Sub(r.CreatedAt)),
			PickupMS: pickup, JobSlotMS: slot, TookMS: a.TookMS, RequestStats: a.RequestStats})
		if !a.FinishedAt.IsZero() && (crit.Task == "" || a.FinishedAt.After(crit.FinishedAt)) {
			crit = a
		}
	}
	end := r.SealedAt
	if r.Upload.State.Ended() && !r.Upload.At.IsZero() {
		end = r.Upload.At
	}
	if !end.IsZero() {
		b.WallMS = ms(end.Sub(r.CreatedAt))
	}
	if crit.Task == "" {
		return b
	}
	b.Critical = crit.Task
	slot, pickup := queueWait(crit, attempts)
	capOnly, atSource := crit.CapOnlyMS, crit.AtSourceMS
	own := max(crit.TookMS-capOnly-atSource, 0)
	held := ms(crit.FinishedAt.Sub(crit.StartedAt)) - crit.TookMS
	b.Steps = []Step{
		// A retried task's earlier attempts are part of its queue wait: the
		// final attempt was queued when the previous one finished.
		{StepPickup, pickup + ms(crit.QueuedAt.Sub(r.CreatedAt))},
		{StepJobSlot, slot},
		{StepCapOnly, capOnly},
		{StepAtSource, atSource},
		{StepOwnWork, own},
		{StepErrand, max(held, 0)},
	}
	if !r.ClosedAt.IsZero() {
		b.Steps = append(b.Steps, Step{StepRecord, ms(r.ClosedAt.Sub(crit.FinishedAt))})
		if !r.SealedAt.IsZero() {
			b.Steps = append(b.Steps, Step{StepFinalize, ms(r.SealedAt.Sub(r.ClosedAt))})
			if end.After(r.SealedAt) {
				b.Steps = append(b.Steps, Step{StepUpload, ms(end.Sub(r.SealedAt))})
			}
		}
	}
	return b
}

// queueWait splits a's wait in the queue (queued → started) into the part
// every job slot of its worker was busy and the pickup after that. A slot
// came free when the worker's previous attempt finished: the latest finish
// of another attempt on the same worker inside the wait.
func queueWait(a Attempt, all []Attempt) (slot, pickup int64) {
	if a.QueuedAt.IsZero() || a.StartedAt.IsZero() {
		return 0, 0
	}
	freed := a.QueuedAt
	for _, o := range all {
		if o.Worker != a.Worker || (o.Task == a.Task && o.Attempt == a.Attempt) || o.FinishedAt.IsZero() {
			continue
		}
		if o.FinishedAt.After(freed) && !o.FinishedAt.After(a.StartedAt) {
			freed = o.FinishedAt
		}
	}
	return ms(freed.Sub(a.QueuedAt)), ms(a.StartedAt.Sub(freed))
}

// SortedByEnd returns the shares latest finish first: the tasks that held
// the run up.
func (b Breakdown) SortedByEnd() []TaskShare {
	out := append([]TaskShare(nil), b.Tasks...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].EndMS > out[j].EndMS })
	return out
}
