package runtest

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/apmtel/apmtel/internal/collect"
	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/internal/uploader"
)

// Spec describes a run to write.
type Spec struct {
	ID      string
	Trigger string // "manual" when empty
	Kind    run.Kind
	Tasks   []string
	Start   time.Time
	// Workers run the tasks, each with Slots concurrent jobs (2 when 0);
	// a task goes to the slot that frees first, as a queue hands it out.
	Workers []string
	Slots   int
	// Took is the took of attempt n (1-based) of the i-th task.
	Took func(i, attempt int) time.Duration
	// Fail maps a task to the error of its only attempt.
	Fail map[string]string
	// Retry maps a task to the error of its first attempt; its second
	// attempt succeeds.
	Retry map[string]string
	// Cancel cancels the run once half of its tasks finished.
	Cancel bool
	// Upload, when a delivered state, records the upload as delivered.
	Upload run.UploadState
}

// Cluster is the source identity the seeded runs carry.
var Cluster = uploader.Source{ClusterUUID: "c1u2u3i4d", ClusterName: "apm-prod", Version: "8.19.0",
	Kibana: &uploader.KibanaFacts{Version: "8.19.0", VersionFrom: "config"}}

const (
	pickup     = 7 * time.Millisecond
	retryDelay = 250 * time.Millisecond
)

// defaults fills in what s leaves unset.
func (s *Spec) defaults() {
	if s.Trigger == "" {
		s.Trigger = "manual"
	}
	if s.Kind == "" {
		s.Kind = run.KindFull
	}
	if s.Slots == 0 {
		s.Slots = 2
	}
	if len(s.Workers) == 0 {
		s.Workers = []string{"worker-a:101", "worker-b:202"}
	}
	if s.Took == nil {
		s.Took = func(i, _ int) time.Duration { return time.Duration(40+(i*37)%160) * time.Millisecond }
	}
}

// Seed writes the run s describes and returns it as stored.
func Seed(ctx context.Context, st *run.Store, s Spec) (run.Run, error) {
	s.defaults()
	r := run.Run{ID: s.ID, Trigger: s.Trigger, Kind: s.Kind, CreatedAt: s.Start, Deadline: s.Start.Add(time.Hour),
		Tasks: s.Tasks, Indices: config.Indices{Transaction: "traces-apm*"}}
	if ok, err := st.Create(ctx, r); err != nil || !ok {
		return run.Run{}, fmt.Errorf("create %s: %v (created %v)", s.ID, err, ok)
	}
	return complete(ctx, st, r, s)
}

// Complete plays the workers' part in a run that exists already (one the
// scheduler created, say): its tasks, as s says (Fail, Retry, Cancel,
// Upload), its seal and upload. s's ID, Kind, Tasks and Start are r's.
func Complete(ctx context.Context, st *run.Store, r run.Run, s Spec) (run.Run, error) {
	s.ID, s.Kind, s.Tasks, s.Start, s.Trigger = r.ID, r.Kind, r.Tasks, r.CreatedAt, r.Trigger
	s.defaults()
	return complete(ctx, st, r, s)
}

func complete(ctx context.Context, st *run.Store, r run.Run, s Spec) (run.Run, error) {
	info, _ := json.Marshal(Cluster)
	if err := st.SetSourceInfo(ctx, s.ID, info); err != nil {
		return run.Run{}, err
	}
	type slot struct {
		worker string
		free   time.Time
	}
	var slots []*slot
	for _, w := range s.Workers {
		for range s.Slots {
			slots = append(slots, &slot{worker: w, free: s.Start})
		}
	}
	next := func() *slot {
		best := slots[0]
		for _, sl := range slots[1:] {
			if sl.free.Before(best.free) {
				best = sl
			}
		}
		return best
	}
	// A retry is queued when its previous attempt failed, after asynq's
	// retry delay: it starts no earlier than that.
	var after time.Time
	var lastErr string
	attempt := func(i int, task string, n, maxN int, status run.TaskStatus, errText string) error {
		sl := next()
		start := sl.free.Add(pickup)
		prevEnd := after.Add(-retryDelay)
		if n > 1 && start.Before(after) {
			start = after
		}
		took := s.Took(i, n)
		end := start.Add(took)
		sl.free = end
		after = end.Add(retryDelay)
		if _, err := st.Start(ctx, r, task, n, maxN, sl.worker, start); err != nil {
			return err
		}
		queued := s.Start
		if n > 1 {
			queued = prevEnd
		}
		rec := run.TaskRecord{Task: task, Status: status, TookMS: took.Milliseconds(), Error: errText, Attempt: n,
			MaxAttempts: maxN, Worker: sl.worker, QueuedAt: queued, StartedAt: start, FinishedAt: end}
		if n > 1 {
			rec.LastError = lastErr
		}
		lastErr = errText
		if status == run.TaskOK {
			rec.Result = json.RawMessage(fmt.Sprintf(`{"tasks_seen":{%q:%d}}`, task, i))
		}
		_, err := st.Record(ctx, s.ID, rec)
		return err
	}
	for i, task := range s.Tasks {
		if s.Cancel && i == len(s.Tasks)/2 {
			if err := st.Cancel(ctx, s.ID, next().free); err != nil {
				return run.Run{}, err
			}
			return st.Get(ctx, s.ID)
		}
		var err error
		switch {
		case s.Fail[task] != "":
			err = attempt(i, task, 1, 1, run.TaskFailed, s.Fail[task])
		case s.Retry[task] != "":
			if err = attempt(i, task, 1, 3, run.TaskRetrying, s.Retry[task]); err == nil {
				err = attempt(i, task, 2, 3, run.TaskOK, "")
			}
		default:
			err = attempt(i, task, 1, 3, run.TaskOK, "")
		}
		if err != nil {
			return run.Run{}, err
		}
	}
	end := s.Start
	for _, sl := range slots {
		if sl.free.After(end) {
			end = sl.free
		}
	}
	if _, err := st.Close(ctx, s.ID, run.ReasonComplete, end); err != nil {
		return run.Run{}, err
	}
	results, err := st.Results(ctx, s.ID)
	if err != nil {
		return run.Run{}, err
	}
	// As finalize seals: the APM object is the snapshot, the behavioural
	// tasks' objects are stored beside it.
	all, rep := collect.AssembleAll(telemetry.Default(), s.Tasks, results, nil)
	b, err := json.Marshal(all.APM)
	if err != nil {
		return run.Run{}, err
	}
	var plugins []byte
	if len(all.Plugins) > 0 {
		if plugins, err = json.Marshal(all.Plugins); err != nil {
			return run.Run{}, err
		}
	}
	sealAt := end.Add(15 * time.Millisecond)
	if _, err := st.Seal(ctx, r, run.Seal{At: sealAt, Snapshot: b, Plugins: plugins, Report: rep, Skip: r.SkipReason(true, &rep)}); err != nil {
		return run.Run{}, err
	}
	if s.Upload.Delivered() {
		if err := st.UploadDelivered(ctx, s.ID, s.Upload, 1, "telemetry/"+uploader.DocID(Cluster.ClusterUUID, s.ID), sealAt.Add(30*time.Millisecond)); err != nil {
			return run.Run{}, err
		}
	}
	return st.Get(ctx, s.ID)
}
