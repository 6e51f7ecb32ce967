package console

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/testenv"
)

// seedMeasuredRun stores a sealed, uploaded run of three tasks with known
// times and request figures and a source identity errand beside its first
// task: c waits for w1's job slot until a ends, and finishes last.
func seedMeasuredRun(t *testing.T, st *run.Store) run.Run {
	t.Helper()
	ctx := context.Background()
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	r := run.Run{ID: "manual-measured", Trigger: "manual", Kind: run.KindFull, CreatedAt: t0, Deadline: at(60000),
		Tasks: []string{"aggregated_transactions", "services", "cloud"}, Indices: config.DefaultIndices()}
	if ok, err := st.Create(ctx, r); err != nil || !ok {
		t.Fatalf("create: %v %v", ok, err)
	}
	attempt := func(task, worker string, start, end int, took int64, rs run.RequestStats) {
		t.Helper()
		so, err := st.Start(ctx, r, task, 1, 4, worker, at(start))
		if err != nil || !so.Started {
			t.Fatalf("start %s: %+v %v", task, so, err)
		}
		rec := so.Record
		rec.Status, rec.TookMS, rec.FinishedAt, rec.Result, rec.RequestStats = run.TaskOK, took, at(end), json.RawMessage(`{}`), rs
		if _, err := st.Record(ctx, r.ID, rec); err != nil {
			t.Fatal(err)
		}
	}
	attempt("aggregated_transactions", "w1", 100, 900, 600, run.RequestStats{Requests: 4, SlotWaitMS: 40, SlotWaitMaxMS: 20, RequestMS: 500, CapOnlyMS: 40, AtSourceMS: 500})
	attempt("services", "w2", 120, 800, 680, run.RequestStats{Requests: 15, SlotWaitMS: 900, SlotWaitMaxMS: 210, RequestMS: 3000, CapOnlyMS: 200, AtSourceMS: 450})
	attempt("cloud", "w1", 950, 1850, 900, run.RequestStats{Requests: 10, SlotWaitMS: 3000, SlotWaitMaxMS: 400, RequestMS: 2000, CapOnlyMS: 300, AtSourceMS: 550})
	e := run.Errand{Name: run.ErrandSourceIdentity, Status: run.TaskOK, Worker: "w1", StartedAt: at(100), FinishedAt: at(330), TookMS: 230,
		RequestStats: run.RequestStats{Requests: 6, SlotWaitMS: 12, SlotWaitMaxMS: 5, RequestMS: 1300, AtSourceMS: 220}}
	if err := st.RecordErrand(ctx, r.ID, e, json.RawMessage(`{"cluster_uuid":"u1","cluster_name":"c1","version":"2.19.1"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Close(ctx, r.ID, run.ReasonComplete, at(1900)); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.Seal(ctx, r, run.Seal{At: at(1950), Snapshot: []byte(`{}`)}); err != nil || !ok {
		t.Fatalf("seal: %v %v", ok, err)
	}
	if err := st.UploadDelivered(ctx, r.ID, run.UploadWritten, 1, "data/payloads/u1.json", at(2000)); err != nil {
		t.Fatal(err)
	}
	return r
}

// A reader of one run page can say why the run took as long as it did: the
// critical path's steps with their times, the errand as its own entry and
// bar, the tasks latest finish first.
func TestRunBreakdownInBrowser(t *testing.T) {
	ctx := browser(t)
	rdb, _ := testenv.RedisDB(t)
	st := run.NewStore(rdb, keys.New(""), time.Hour, 50)
	r := seedMeasuredRun(t, st)
	url := serve(t, st)

	open(t, ctx, url+RunURL(r.ID), "#critical-path")
	text := func(sel string) string { return must(chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel))))(t) }
	type row struct {
		Step string `json:"step"`
		Dur  string `json:"dur"`
	}
	steps := must(chromedp.Run(ctx, chromedp.Evaluate[[]row](`[...document.querySelectorAll('#critical-path tr.step')].map(r =>
		({step: r.dataset.step, dur: r.cells[1].textContent.trim()}))`)))(t)
	want := []row{{run.StepPickup, "50ms"}, {run.StepJobSlot, "900ms"}, {run.StepCapOnly, "300ms"}, {run.StepAtSource, "550ms"},
		{run.StepOwnWork, "50ms"}, {run.StepErrand, "0s"}, {run.StepRecord, "50ms"}, {run.StepFinalize, "50ms"}, {run.StepUpload, "50ms"}}
	if !slices.Equal(steps, want) {
		t.Errorf("critical path rows\n got %+v\nwant %+v", steps, want)
	}
	why := text("#why")
	for _, s := range []string{"Wall time 2s", "through cloud", "largest part: " + run.StepJobSlot + ", 900ms (45.0%)"} {
		if !strings.Contains(why, s) {
			t.Errorf("summary %q lacks %q", why, s)
		}
	}
	errand := text(`#errands tr[data-errand="source_identity"]`)
	for _, s := range []string{"ok", "w1", "230ms", "6", "12ms / 5ms", "1.3s"} {
		if !strings.Contains(errand, s) {
			t.Errorf("errand row %q lacks %q", errand, s)
		}
	}
	order := must(chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#shares tr.share')].map(r => r.dataset.task)`)))(t)
	if !slices.Equal(order, []string{"cloud", "aggregated_transactions", "services"}) {
		t.Errorf("task shares in order %v, want latest finish first", order)
	}
	if c := text(`#shares tr.critical`); !strings.HasPrefix(c, "cloud") || !strings.Contains(c, "3s / 400ms") {
		t.Errorf("critical task row %q", c)
	}
	// The errand is a bar of its own in w1's lane, apart from the three task bars.
	bars := must(chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#timeline rect.bar').length`)))(t)
	errands := must(chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#timeline rect.errandbar')].map(b => b.dataset.errand + "@" + b.dataset.worker)`)))(t)
	if bars != 3 || !slices.Equal(errands, []string{"errand: source_identity@w1"}) {
		t.Errorf("timeline: %d task bars, errand bars %v", bars, errands)
	}
	shoot(t, ctx, t.TempDir(), "run-breakdown.png")
}
