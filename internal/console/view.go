package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"slices"
	"time"

	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/uploader"
)

// filters are the values /runs?status= takes: the run statuses, and "ok"
// and "failed" for sealed runs with and without failed tasks.
var filters = []string{string(run.StatusOpen), string(run.StatusClosed), string(run.StatusSealed), string(run.StatusCancelled),
	string(run.OutcomeOK), string(run.OutcomeFailed)}

func validFilter(s string) bool { return slices.Contains(filters, s) }

func matches(r run.Run, filter string, failed int) bool {
	switch filter {
	case "":
		return true
	case string(run.OutcomeOK):
		return r.Status == run.StatusSealed && failed == 0
	case string(run.OutcomeFailed):
		return r.Status == run.StatusSealed && failed > 0
	}
	return string(r.Status) == filter
}

var funcs = template.FuncMap{
	"ts":   formatTime,
	"dur":  formatDur,
	"ms":   func(n int64) string { return formatDur(time.Duration(n) * time.Millisecond) },
	"f1":   func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"rfc":  func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
	"url":  RunURL,
	"join": func(a, b string) string { return a + b },
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// formatDur rounds to what a reader compares: ms below 10 s, then 0.1 s.
func formatDur(d time.Duration) string {
	switch {
	case d < 0:
		return "-"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < 10*time.Second:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// wall is a run's wall time: creation to seal (or to close, or to now while
// it runs), the DURATION of `apmtel runs`.
func wall(r run.Run, now time.Time) (time.Duration, bool) {
	switch {
	case !r.SealedAt.IsZero():
		return r.SealedAt.Sub(r.CreatedAt), true
	case !r.ClosedAt.IsZero():
		return r.ClosedAt.Sub(r.CreatedAt), true
	}
	return now.Sub(r.CreatedAt), false
}

// --- /runs

type runRow struct {
	Run      run.Run
	Duration string
	OK       int
	Failed   int
	Other    int
	Upload   string
}

type runListView struct {
	Rows    []runRow
	Filter  string
	Filters []string
	Total   int
	Cluster string
}

// tally counts a run's tasks that succeeded, failed and are still going.
// A sealed run's report has every task; other runs are read task by task.
func (c *console) tally(ctx context.Context, r run.Run) (ok, failed, other int, err error) {
	if r.Report != nil {
		for _, name := range r.Tasks {
			if ts, found := r.Report.Tasks[name]; found && ts.Status == run.TaskOK {
				ok++
			}
		}
		failed = len(r.Report.Failed)
		return ok, failed, len(r.Tasks) - ok - failed, nil
	}
	res, err := c.o.Runs.Results(ctx, r.ID)
	if err != nil {
		return 0, 0, 0, err
	}
	for _, name := range r.Tasks {
		// A cancelled task did not fail: it counts with the tasks that did
		// not finish ("stopped" on the page of a cancelled run).
		switch st := res[name].Status; {
		case st == run.TaskOK:
			ok++
		case st.Final() && st != run.TaskCancelled:
			failed++
		default:
			other++
		}
	}
	return ok, failed, other, nil
}

func (c *console) runList(ctx context.Context, runs []run.Run, filter string) (runListView, error) {
	v := runListView{Filter: filter, Filters: filters, Total: len(runs)}
	for _, r := range runs {
		ok, failed, other, err := c.tally(ctx, r)
		if err != nil {
			return v, err
		}
		if !matches(r, filter, failed) {
			continue
		}
		d, done := wall(r, c.o.Now.Now())
		ds := formatDur(d)
		if !done {
			ds = "running " + ds
		}
		v.Rows = append(v.Rows, runRow{Run: r, Duration: ds, OK: ok, Failed: failed, Other: other, Upload: r.Upload.String()})
	}
	return v, nil
}

// --- /runs/{id}

type taskRow struct {
	Task     string
	Status   run.TaskStatus
	Attempts int
	Max      int
	Took     string
	Worker   string
	Error    string
	// Earlier is the error of an earlier attempt of a task that then succeeded.
	Earlier  string
	Deadline run.Deadline
	Warnings []string
	JobURL   string
}

type docView struct {
	// Sent says whether the document was sent, will be, or never is.
	Sent   string
	Class  string
	ID     string
	Target string
	JSON   string
	// Label names what JSON holds.
	Label string
}

type runView struct {
	Run       run.Run
	Duration  string
	Serial    string
	Tasks     []taskRow
	Timeline  timeline
	Breakdown breakdownView
	Doc       docView
	Problems  []string
	Upload    string
}

func (c *console) runView(ctx context.Context, r run.Run) (runView, error) {
	results, err := c.o.Runs.Results(ctx, r.ID)
	if err != nil {
		return runView{}, err
	}
	attempts, err := c.o.Runs.Attempts(ctx, r.ID)
	if err != nil {
		return runView{}, err
	}
	now := c.o.Now.Now()
	d, done := wall(r, now)
	v := runView{Run: r, Duration: formatDur(d), Upload: r.Upload.String()}
	if !done {
		v.Duration = "running " + v.Duration
	}
	if r.Report != nil {
		v.Problems = append(v.Problems, r.Report.Problems...)
	}
	perTask := map[string]int{}
	for _, a := range attempts {
		perTask[a.Task]++
	}
	var serial int64
	for _, name := range r.Tasks {
		rec, ok := results[name]
		row := taskRow{Task: name, Status: run.TaskQueued, Took: "-", JobURL: c.asynqmonTask(r.Source, r.ID, name)}
		if ok {
			row.Status, row.Worker, row.Deadline, row.Warnings = rec.Status, rec.Worker, rec.Deadline, rec.Warnings
			row.Max = rec.MaxAttempts
			row.Error = rec.Error
			if rec.Status == run.TaskRetrying || rec.Status == run.TaskRunning {
				row.Error = rec.LastError
			} else if rec.Status == run.TaskOK {
				row.Earlier = rec.LastError
			}
			if rec.Status.Final() && !rec.StartedAt.IsZero() {
				row.Took = formatDur(time.Duration(rec.TookMS) * time.Millisecond)
				serial += rec.TookMS
			}
		}
		row.Attempts = perTask[name]
		v.Tasks = append(v.Tasks, row)
	}
	v.Serial = formatDur(time.Duration(serial) * time.Millisecond)
	end := now
	switch {
	case !r.SealedAt.IsZero():
		end = r.SealedAt
	case !r.ClosedAt.IsZero():
		end = r.ClosedAt
	}
	v.Timeline = layoutTimeline(r.CreatedAt, end, attempts, r.Errands)
	v.Breakdown = breakdownOf(run.BreakdownOf(r, attempts))
	v.Doc = c.document(ctx, r)
	return v, nil
}

// document is the envelope the run's upload sends (built exactly as the
// upload job builds it: the stored source identity, the snapshot, the seal
// time), or why there is none.
func (c *console) document(ctx context.Context, r run.Run) docView {
	switch {
	case r.Status == run.StatusCancelled:
		return docView{Sent: "Not sent: the run was cancelled; a cancelled run has no snapshot and is never uploaded.", Class: "never"}
	case r.Kind == run.KindPartial, r.Kind == run.KindDryRun:
		why := "a partial run (apmtel run --task) is reported, never uploaded"
		if r.Kind == run.KindDryRun {
			why = "a dry run (apmtel run --no-upload) is stored and reported, never uploaded"
		}
		d := docView{Sent: "Not sent: " + why + ".", Class: "never"}
		if snap, err := c.o.Runs.Snapshot(ctx, r.ID); err == nil {
			d.JSON, d.Label = indent(snap), "Telemetry object (stack_stats.kibana.plugins.apm), not sent"
		}
		return d
	case r.Status != run.StatusSealed:
		return docView{Sent: "Not built yet: the document is assembled when the run seals.", Class: "pending"}
	}
	id, env, err := uploader.RunDocument(ctx, c.o.Runs, r)
	switch {
	case errors.Is(err, uploader.ErrNoSource):
		d := docView{Sent: "No job captured the source cluster's identity; the upload reads it from the source cluster before sending, so the envelope is not known yet.",
			Class: "pending"}
		if snap, err := c.o.Runs.Snapshot(ctx, r.ID); err == nil {
			d.JSON, d.Label = indent(snap), "Telemetry object (stack_stats.kibana.plugins.apm)"
		}
		return d
	case err != nil:
		return docView{Sent: "No document can be built: " + err.Error(), Class: "never"}
	}
	b, err := env.Encode()
	if err != nil {
		return docView{Sent: "No document can be built: " + err.Error(), Class: "never"}
	}
	d := docView{ID: id, JSON: string(b), Label: "Envelope"}
	d.Target = "unknown (no sink configured for the monitor)"
	if c.o.Sink != nil {
		d.Target = c.o.Sink.Target(d.ID)
	}
	u := r.Upload
	switch u.State {
	case run.UploadUploaded, run.UploadWritten:
		d.Sent, d.Class = fmt.Sprintf("Sent: %s to %s at %s (attempt %d).", u.State, u.Detail, formatTime(u.At), u.Attempt), "sent"
	case run.UploadSkipped:
		d.Sent, d.Class = fmt.Sprintf("Not sent: skipped (%s). This is the document it would have been.", u.Detail), "never"
	case run.UploadFailed:
		d.Sent, d.Class = fmt.Sprintf("Not delivered: %s. `apmtel upload %s` sends this document again.", u.Error, r.ID), "failed"
	case run.UploadRetrying:
		d.Sent, d.Class = fmt.Sprintf("Will be sent: attempt %s failed (%s); the upload retries.", u.String(), u.Error), "pending"
	default:
		d.Sent, d.Class = "Will be sent: the upload is pending.", "pending"
	}
	return d
}

// indent pretty-prints JSON without decoding it, so numbers stay exact.
func indent(b []byte) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return string(b)
	}
	return buf.String()
}

// --- the breakdown of /runs/{id}

type stepRow struct {
	Name string
	Dur  string
	// Pct is the step's share of the wall time; Width the same in SVG-free
	// CSS (a bar as wide as the share).
	Pct   float64
	Width string
}

type shareRow struct {
	run.TaskShare
	Critical bool
}

type breakdownView struct {
	Wall     string
	Critical string
	// Largest is the step that took the biggest share.
	Largest stepRow
	Steps   []stepRow
	Tasks   []shareRow
	Errands []run.Errand
}

// breakdownOf renders b: the critical path's steps with their shares, the
// tasks latest finish first (the ones that held the run up come first).
func breakdownOf(b run.Breakdown) breakdownView {
	v := breakdownView{Critical: b.Critical}
	if b.WallMS > 0 {
		v.Wall = formatDur(time.Duration(b.WallMS) * time.Millisecond)
	}
	for _, st := range b.Steps {
		row := stepRow{Name: st.Name, Dur: formatDur(time.Duration(st.MS) * time.Millisecond)}
		if b.WallMS > 0 {
			row.Pct = 100 * float64(st.MS) / float64(b.WallMS)
			row.Width = fmt.Sprintf("%.1f%%", row.Pct)
		}
		if st.MS > 0 && (v.Largest.Name == "" || row.Pct > v.Largest.Pct) {
			v.Largest = row
		}
		v.Steps = append(v.Steps, row)
	}
	for _, ts := range b.SortedByEnd() {
		v.Tasks = append(v.Tasks, shareRow{TaskShare: ts, Critical: ts.Task == b.Critical})
	}
	v.Errands = b.Errands
	return v
}
