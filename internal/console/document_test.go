package console

import (
	"context"
	"html"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/runtest"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/internal/uploader"
	"github.com/apmtel/apmtel/jobs"
	"github.com/apmtel/apmtel/workers"
)

var documentPre = regexp.MustCompile(`(?s)<pre id="document">(.*?)</pre>`)

// upload runs the worker's upload job of run id into sink.
func upload(t *testing.T, st *run.Store, sink uploader.Sink, id string) {
	t.Helper()
	h := workers.NewHandlers(workers.Deps{Config: config.Default(), Clusters: workers.OneCluster{Runs: st}, Registry: telemetry.Default(), Sink: sink, Logger: zerolog.Nop()})
	job, err := jobs.NewUpload(jobs.RunPayload{Source: keys.DefaultSource, RunID: id}, 0, config.Default().Timing())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Upload(context.Background(), asynq.NewTask(job.Type(), job.Payload())); err != nil {
		t.Fatalf("upload %s: %v", id, err)
	}
}

// The document the console shows for a full run with the behavioural tasks
// is, byte for byte, the file the upload job wrote through the file sink.
func TestConsoleShowsTheUploadedDocument(t *testing.T) {
	t.Parallel()
	rdb, _ := testenv.RedisDB(t)
	st := run.NewStore(rdb, keys.New(""), time.Hour, 50)
	tasks := telemetry.Default().Names()
	for _, behavioural := range []string{"application_usage", "ui_counters"} {
		if !strings.Contains(strings.Join(tasks, " "), behavioural) {
			t.Fatalf("the registry lacks %s: %v", behavioural, tasks)
		}
	}
	r, err := runtest.Seed(context.Background(), st, runtest.Spec{ID: "scheduled-20261204T100000Z", Trigger: "schedule", Tasks: tasks,
		Start: time.Now().Add(-time.Hour).UTC().Truncate(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	sink := uploader.FileSink{Dir: t.TempDir()}
	upload(t, st, sink, r.ID)
	if r, _ = st.Get(context.Background(), r.ID); r.Upload.State != run.UploadWritten {
		t.Fatalf("upload state %s, want written", r.Upload.String())
	}
	file, err := os.ReadFile(r.Upload.Detail)
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range []string{`"apm": {`, `"application_usage": {`, `"ui_counters": {`} {
		if !strings.Contains(string(file), obj) {
			t.Errorf("the uploaded document lacks %s", obj)
		}
	}
	_, body := get(t, serve(t, st)+RunURL(r.ID))
	m := documentPre.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the run page shows no document: %.500s", body)
	}
	if shown := html.UnescapeString(m[1]); shown != string(file) {
		t.Errorf("the console shows a different document from the uploaded file:\nshown %d bytes: %.300s\nfile  %d bytes: %.300s",
			len(shown), shown, len(file), file)
	}
}

// A full run in which no task succeeded uploads nothing: its values would
// all be carried over from earlier runs, stamped now. The skip shows in the
// run's upload state (runs, the metrics' upload outcome) and in the console.
func TestNothingCollectedIsNotUploaded(t *testing.T) {
	t.Parallel()
	rdb, _ := testenv.RedisDB(t)
	st := run.NewStore(rdb, keys.New(""), time.Hour, 50)
	tasks := telemetry.Default().Names()[:3]
	fail := map[string]string{}
	for _, task := range tasks {
		fail[task] = "connection refused"
	}
	r, err := runtest.Seed(context.Background(), st, runtest.Spec{ID: "scheduled-20261204T110000Z", Trigger: "schedule", Tasks: tasks,
		Start: time.Now().Add(-time.Hour).UTC(), Fail: fail})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Upload.String(); got != "skipped (nothing collected)" {
		t.Errorf("upload %q, want skipped (nothing collected)", got)
	}
	dir := t.TempDir()
	upload(t, st, uploader.FileSink{Dir: dir}, r.ID)
	if files, _ := os.ReadDir(dir); len(files) != 0 {
		t.Errorf("a run that collected nothing was uploaded: %v", files)
	}
	_, body := get(t, serve(t, st)+RunURL(r.ID))
	if !strings.Contains(body, "Not sent: skipped (nothing collected)") {
		t.Errorf("the run page does not say why nothing was sent: %.500s", body)
	}
}
