package workers_test

import (
	"testing"

	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/workers"
)

func TestRunFailure(t *testing.T) {
	tasks := []string{"a", "b"}
	sealed := func(mod func(*run.Run)) run.Run {
		r := run.Run{ID: "sched-x", Kind: run.KindFull, Status: run.StatusSealed, Tasks: tasks,
			Report:  &run.Report{Tasks: map[string]run.TaskSummary{"a": {Status: run.TaskOK}, "b": {Status: run.TaskOK}}},
			Errands: []run.Errand{{Name: run.ErrandSourceIdentity, Status: run.TaskOK}}, Upload: run.Upload{State: run.UploadWritten}}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	for _, tc := range []struct {
		name   string
		r      run.Run
		failed bool
		why    string
	}{
		{"all collected", sealed(nil), false, ""},
		{"one task failed", sealed(func(r *run.Run) { r.Report.Failed = []string{"b"} }), false, ""},
		{"every task failed", sealed(func(r *run.Run) {
			r.Report.Failed = tasks
			r.Report.Tasks["a"] = run.TaskSummary{Status: run.TaskFailed, Error: "connection refused"}
		}), true, "every task failed: connection refused"},
		{"identity failed", sealed(func(r *run.Run) {
			r.Errands[0] = run.Errand{Name: run.ErrandSourceIdentity, Status: run.TaskFailed, Error: "401"}
		}), true, "source identity: 401"},
		{"upload failed", sealed(func(r *run.Run) { r.Upload = run.Upload{State: run.UploadFailed, Error: "503"} }), true, "upload failed: 503"},
		{"partial run", sealed(func(r *run.Run) { r.Kind = run.KindPartial; r.Report.Failed = tasks }), false, ""},
		{"cancelled", sealed(func(r *run.Run) { r.Status = run.StatusCancelled; r.Report.Failed = tasks }), false, ""},
		{"not sealed yet", sealed(func(r *run.Run) { r.Status = run.StatusClosed; r.Report.Failed = tasks }), false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failed, why := workers.RunFailure(tc.r)
			if failed != tc.failed || why != tc.why {
				t.Errorf("RunFailure = %v %q, want %v %q", failed, why, tc.failed, tc.why)
			}
		})
	}
}
