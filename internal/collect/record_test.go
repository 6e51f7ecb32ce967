package collect

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/run"
)

// How an outcome becomes a record, for a worker (retries left, secrets
// redacted) and for preview (one attempt, printed as is).
func TestOutcomeRecord(t *testing.T) {
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.FixedZone("x", 3600))
	redact := func(s string) string { return strings.ReplaceAll(s, "hunter2", "[redacted]") }
	failed := Outcome{Status: run.TaskFailed, Err: errors.New("401 for password hunter2"), Took: 1500 * time.Millisecond}
	for _, tc := range []struct {
		name      string
		o         Outcome
		retryable bool
		redact    func(string) string
		status    run.TaskStatus
		err       string
	}{
		{"ok", Outcome{Status: run.TaskOK, Result: []byte(`{"a":1}`)}, true, redact, run.TaskOK, ""},
		{"worker: a failure with retries left retries", failed, true, redact, run.TaskRetrying, "401 for password [redacted]"},
		{"worker: the last attempt fails", failed, false, redact, run.TaskFailed, "401 for password [redacted]"},
		{"worker: a permanent failure never retries", Outcome{Status: run.TaskFailed, Err: errors.New("400"), Permanent: true}, true, redact, run.TaskFailed, "400"},
		{"preview: a failure is final and printed as is", failed, false, nil, run.TaskFailed, "401 for password hunter2"},
		{"preview: Ctrl-C", Outcome{Status: run.TaskFailed, Err: errors.New("context canceled"), Interrupted: true}, false, nil, run.TaskCancelled, "context canceled"},
	} {
		rec := tc.o.Record(run.TaskRecord{Task: "cloud", Attempt: 2, Worker: "w/1"}, at, tc.retryable, tc.redact)
		if rec.Status != tc.status || rec.Error != tc.err || rec.Task != "cloud" || rec.Attempt != 2 || rec.Worker != "w/1" ||
			!rec.FinishedAt.Equal(at) || rec.FinishedAt.Location() != time.UTC || rec.TookMS != tc.o.Took.Milliseconds() || string(rec.Result) != string(tc.o.Result) {
			t.Errorf("%s: %+v", tc.name, rec)
		}
	}
}
