package console

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image"
	"image/png"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/runtest"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/internal/uploader"
	"github.com/apmtel/apmtel/internal/webguard"
)

var update = flag.Bool("update", false, "rewrite docs/console-run.png from the browser test")

const token = "console-test-token-0123456789"

// fixture is a console behind the monitor's guard (a token configured, so
// every page needs it) over real runs in real Redis: a full run of every
// task with one failed task and one retried twice, two earlier runs and a
// cancelled one.
type fixture struct {
	url     string
	main    run.Run
	history []run.Run // sealed, oldest first
	tasks   []string
	st      *run.Store
}

const (
	failedTask  = "cardinality"
	failedError = "search_phase_execution_exception: [too_many_buckets_exception] Trying to create too many buckets. Must be less than or equal to: [65536]"
	retriedTask = "agents"
)

func newFixture(t *testing.T) fixture {
	t.Helper()
	rdb, _ := testenv.RedisDB(t)
	ctx := context.Background()
	st := run.NewStore(rdb, keys.New(""), time.Hour, 50)
	tasks := telemetry.Default().Names()
	if !slices.Contains(tasks, failedTask) || !slices.Contains(tasks, retriedTask) {
		t.Fatalf("tasks %v lack %s or %s", tasks, failedTask, retriedTask)
	}
	base := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)
	took := func(scale float64) func(i, n int) time.Duration {
		return func(i, n int) time.Duration {
			return time.Duration(scale*float64(150+(i*211)%900)) * time.Millisecond
		}
	}
	f := fixture{tasks: tasks, st: st}
	for i, scale := range []float64{1.3, 1.1} {
		r, err := runtest.Seed(ctx, st, runtest.Spec{ID: fmt.Sprintf("scheduled-%d", i), Trigger: "schedule", Tasks: tasks,
			Start: base.Add(time.Duration(i) * time.Hour), Took: took(scale), Upload: run.UploadUploaded})
		if err != nil {
			t.Fatal(err)
		}
		f.history = append(f.history, r)
	}
	if _, err := runtest.Seed(ctx, st, runtest.Spec{ID: "cancelled-1", Tasks: tasks, Start: base.Add(90 * time.Minute), Cancel: true}); err != nil {
		t.Fatal(err)
	}
	main, err := runtest.Seed(ctx, st, runtest.Spec{ID: "manual-20250304T050000Z", Tasks: tasks, Start: base.Add(2 * time.Hour),
		Took: took(1), Workers: []string{"worker-7f9c:3121", "worker-a41d:3188", "worker-c0e2:2977"},
		Fail: map[string]string{failedTask: failedError}, Retry: map[string]string{retriedTask: "connection reset by peer"}})
	if err != nil {
		t.Fatal(err)
	}
	f.main = main
	f.history = append(f.history, main)
	f.url = serve(t, st)
	return f
}

// serve starts the console over st behind the monitor's guard and returns
// its URL.
func serve(t *testing.T, st *run.Store) string {
	t.Helper()
	return serveOptions(t, Options{Runs: st, MonitorPath: "/monitoring", Sink: uploader.ESSink{Index: "telemetry-apm"}})
}

// serveOptions starts the console with o behind the monitor's guard.
func serveOptions(t *testing.T, o Options) string {
	t.Helper()
	mux := http.NewServeMux()
	if err := Register(mux, o); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(webguard.Guard(webguard.Options{Addr: ln.Addr().String(), Token: token, ReadOnly: true}, mux))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// chromium finds Debian's chromium: absent, the test is skipped, except in
// CI, where scripts/test.sh installs it and its absence is a failure.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed: scripts/test.sh installs it (apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install -y --no-install-recommends chromium): browser test skipped")
	return ""
}

func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelC := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelC(); cancelB(); cancelA() })
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders,
		network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": "Bearer " + token}}); err != nil {
		t.Fatalf("set the token header: %v", err)
	}
	return ctx
}

// shoot saves a full-page screenshot under dir and checks it is not blank:
// the luminance of its pixels must vary.
func shoot(t *testing.T, ctx context.Context, dir, name string) []byte {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), buf, 0o644); err != nil {
		t.Fatal(err)
	}
	// CI may keep the screenshots as artifacts.
	if keep := os.Getenv("APMTEL_TEST_SCREENSHOTS"); keep != "" {
		_ = os.MkdirAll(keep, 0o755)
		_ = os.WriteFile(filepath.Join(keep, name), buf, 0o644)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if sd := luminanceSD(img); sd < 8 {
		t.Errorf("screenshot %s looks blank: luminance standard deviation %.2f", name, sd)
	}
	return buf
}

func luminanceSD(img image.Image) float64 {
	b := img.Bounds()
	var n, sum, sq float64
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			l := (0.299*float64(r) + 0.587*float64(g) + 0.114*float64(bl)) / 257
			n++
			sum += l
			sq += l * l
		}
	}
	mean := sum / n
	return math.Sqrt(sq/n - mean*mean)
}

// open loads url and waits until sel is visible.
func open(t *testing.T, ctx context.Context, url, sel string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
}

// must turns a (value, error) pair into the value, failing t on the error.
func must[T any](v T, err error) func(*testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func TestConsoleInBrowser(t *testing.T) {
	f := newFixture(t)
	ctx := browser(t)
	dir := t.TempDir()

	t.Run("runs", func(t *testing.T) {
		open(t, ctx, f.url+"/runs", "#runs")
		ids := must(chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('tr.run')].map(r => r.dataset.run)`)))(t)
		failedCell := must(chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`tr.run[data-run="`+f.main.ID+`"] td.tasks`))))(t)
		want := []string{f.main.ID, "cancelled-1", "scheduled-1", "scheduled-0"}
		if !slices.Equal(ids, want) {
			t.Errorf("runs listed %v, want %v (newest first)", ids, want)
		}
		if wantCell := fmt.Sprintf("%d ok · 1 failed", len(f.tasks)-1); failedCell != wantCell {
			t.Errorf("tasks cell of %s = %q, want %q", f.main.ID, failedCell, wantCell)
		}
		shoot(t, ctx, dir, "runs.png")
		// The status filter.
		open(t, ctx, f.url+"/runs?status=cancelled", "#runs")
		ids = must(chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('tr.run')].map(r => r.dataset.run)`)))(t)
		if !slices.Equal(ids, []string{"cancelled-1"}) {
			t.Errorf("?status=cancelled listed %v", ids)
		}
	})

	t.Run("run", func(t *testing.T) {
		type barInfo struct {
			Task    string  `json:"task"`
			Attempt string  `json:"attempt"`
			Start   string  `json:"start"`
			X       float64 `json:"x"`
			W       float64 `json:"w"`
		}
		open(t, ctx, f.url+RunURL(f.main.ID), "#timeline")
		rows := must(chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#tasks tr.task')].map(r => r.dataset.task)`)))(t)
		bars := must(chromedp.Run(ctx, chromedp.Evaluate[[]barInfo](`[...document.querySelectorAll('#timeline rect.bar')].map(b => ({task: b.dataset.task,
			attempt: b.dataset.attempt, start: b.dataset.start, x: b.x.baseVal.value, w: b.width.baseVal.value}))`)))(t)
		text := func(sel string) string { return must(chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel))))(t) }
		errText, docID, target, sent := text(`#tasks tr[data-task="`+failedTask+`"] td.error`), text("#docid"), text("#target"), text("#sent")
		jobHref := must(chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`#tasks tr[data-task="`+retriedTask+`"] a`), "href")))(t).Value
		if !slices.Equal(rows, f.tasks) {
			t.Errorf("task rows %v, want the run's %d tasks %v", rows, len(f.tasks), f.tasks)
		}
		attempts, err := f.st.Attempts(context.Background(), f.main.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(attempts) != len(f.tasks)+1 || len(bars) != len(attempts) {
			t.Fatalf("%d bars for %d attempts of %d tasks (one retried): want one bar per attempt", len(bars), len(attempts), len(f.tasks))
		}
		for i, b := range bars {
			a := attempts[i]
			if b.Task != a.Task || b.Attempt != fmt.Sprint(a.Attempt) || b.Start != a.StartedAt.UTC().Format(time.RFC3339Nano) {
				t.Errorf("bar %d is %s #%s at %s, want %s #%d at %s (start order)", i, b.Task, b.Attempt, b.Start, a.Task, a.Attempt, a.StartedAt.UTC().Format(time.RFC3339Nano))
			}
			if i > 0 && b.X < bars[i-1].X {
				t.Errorf("bar %d (%s) at x=%.1f is left of bar %d (%s) at x=%.1f, though it started later", i, b.Task, b.X, i-1, bars[i-1].Task, bars[i-1].X)
			}
		}
		var first, second *barInfo
		for i := range bars {
			if bars[i].Task == retriedTask {
				if bars[i].Attempt == "1" {
					first = &bars[i]
				} else {
					second = &bars[i]
				}
			}
		}
		if first == nil || second == nil || second.X < first.X+first.W-0.5 {
			t.Errorf("retried task's bars %+v, %+v: the second attempt must start after the first ended", first, second)
		}
		if !strings.Contains(errText, failedError) {
			t.Errorf("failed task's error cell = %q, want %q", errText, failedError)
		}
		if want := uploader.DocID(runtest.Cluster.ClusterUUID, f.main.ID); docID != want {
			t.Errorf("document id %q, want %q", docID, want)
		}
		if want := "telemetry-apm/_doc/" + uploader.DocID(runtest.Cluster.ClusterUUID, f.main.ID); target != want {
			t.Errorf("target %q, want %q", target, want)
		}
		if !strings.HasPrefix(sent, "Will be sent") {
			t.Errorf("a sealed full run with a pending upload says %q", sent)
		}
		if want := "/monitoring/queues/telemetry/tasks/collect:default:" + f.main.ID + ":" + retriedTask; jobHref != want {
			t.Errorf("job link %q, want %q (Asynqmon's task page)", jobHref, want)
		}
		shot := shoot(t, ctx, dir, "run.png")
		if *update {
			if err := os.WriteFile("../../docs/console-run.png", shot, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("history", func(t *testing.T) {
		open(t, ctx, f.url+"/history", "svg.chart")
		eval := func(js string) []string { return must(chromedp.Run(ctx, chromedp.Evaluate[[]string](js)))(t) }
		wallRuns := eval(`[...document.querySelectorAll('circle.pt.wall')].map(c => c.dataset.run)`)
		serialRuns := eval(`[...document.querySelectorAll('circle.pt.serial')].map(c => c.dataset.run)`)
		taskCharts := must(chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('.charts figure').length`)))(t)
		var want []string
		for _, r := range f.history {
			want = append(want, r.ID)
		}
		if !slices.Equal(wallRuns, want) || !slices.Equal(serialRuns, want) {
			t.Errorf("wall points %v, serial points %v: want one per sealed run, oldest first: %v", wallRuns, serialRuns, want)
		}
		if taskCharts != len(f.tasks) {
			t.Errorf("%d task charts, want %d", taskCharts, len(f.tasks))
		}
		shoot(t, ctx, dir, "history.png")
	})
	t.Logf("screenshots in %s", dir)
}

// Every page, and the stylesheet, needs the token once one is configured.
func TestConsoleNeedsToken(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/runs", RunURL(f.main.ID), "/history", "/console/static/console.css", "/"} {
		for _, tc := range []struct {
			auth string
			want int
		}{{"Bearer " + token, 200}, {"", 401}, {"Bearer wrong-token-0123456789", 401}} { // the token first: after 10 failures the guard answers 429
			req, _ := http.NewRequest("GET", f.url+path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			want := tc.want
			if path == "/" && want == 200 {
				want = http.StatusFound
			}
			if res.StatusCode != want {
				t.Errorf("GET %s with %q = %d, want %d", path, tc.auth, res.StatusCode, want)
			}
		}
	}
}

// The x axes of /history over many runs, five of them within one minute: on
// every chart (the wide one and the small per-task ones) no two rendered
// labels intersect, each label names a run and is that run's creation time
// with seconds (runs share a minute), labels are distinct, and every point's
// title names its own run.
func TestHistoryAxisInBrowser(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	ctx := context.Background()
	st := run.NewStore(rdb, keys.New(""), time.Hour, 100)
	tasks := telemetry.Default().Names()[:3]
	// One UTC day, so the labels carry no date: 10:00 yesterday onwards.
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(-14 * time.Hour)
	var runs []run.Run
	var xs []axisRun
	at := day
	for i := range 40 {
		gap := 7 * time.Minute
		if i >= 20 && i < 25 {
			gap = 9 * time.Second // five runs in one minute
		}
		at = at.Add(gap)
		r, err := runtest.Seed(ctx, st, runtest.Spec{ID: fmt.Sprintf("manual-%02d", i), Tasks: tasks, Start: at,
			Took: func(j, _ int) time.Duration { return time.Duration(100+(i*53+j*31)%400) * time.Millisecond }})
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
		xs = append(xs, axisRun{ID: r.ID, At: r.CreatedAt})
	}
	layout := axisLayout(xs)
	if layout != "15:04:05" {
		t.Fatalf("layout %q for runs sharing a minute within one day, want 15:04:05", layout)
	}
	created := map[string]string{}
	for _, r := range runs {
		created[r.ID] = r.CreatedAt.UTC().Format(layout)
	}
	url := serve(t, st)
	bctx := browser(t)
	open(t, bctx, fmt.Sprintf("%s/history?n=%d", url, len(runs)), "svg.chart")

	type rect struct{ L, R, T, B float64 }
	type label struct {
		Run  string `json:"run"`
		Text string `json:"text"`
		Rect rect   `json:"rect"`
	}
	type chartInfo struct {
		Title  string   `json:"title"`
		Box    rect     `json:"box"`
		Labels []label  `json:"labels"`
		Points []string `json:"points"` // data-run of each point
		Titles []string `json:"titles"` // each point's title
	}
	charts := must(chromedp.Run(bctx, chromedp.Evaluate[[]chartInfo](`(() => {
		const box = e => { const r = e.getBoundingClientRect(); return {L: r.left, R: r.right, T: r.top, B: r.bottom}; };
		return [...document.querySelectorAll('svg.chart')].map(svg => ({
			title: svg.getAttribute('aria-label'),
			box: box(svg),
			labels: [...svg.querySelectorAll('text.tick')].map(t => ({run: t.dataset.run,
				text: [...t.childNodes].filter(n => n.nodeType === Node.TEXT_NODE).map(n => n.data).join('').trim(), rect: box(t)})),
			points: [...svg.querySelectorAll('circle.pt')].map(c => c.dataset.run),
			titles: [...svg.querySelectorAll('circle.pt > title')].map(t => t.textContent),
		}));
	})()`)))(t)
	if len(charts) != 1+len(tasks) {
		t.Fatalf("%d charts, want the wall chart and %d task charts", len(charts), len(tasks))
	}
	for _, c := range charts {
		if len(c.Labels) < 3 {
			t.Errorf("%s: %d x labels for %d runs, want at least the first, the last and one between", c.Title, len(c.Labels), len(runs))
		}
		if len(c.Labels) > 0 && (c.Labels[0].Run != runs[0].ID || c.Labels[len(c.Labels)-1].Run != runs[len(runs)-1].ID) {
			t.Errorf("%s: labels run from %s to %s, want the oldest %s to the newest %s", c.Title,
				c.Labels[0].Run, c.Labels[len(c.Labels)-1].Run, runs[0].ID, runs[len(runs)-1].ID)
		}
		seen := map[string]bool{}
		for i, l := range c.Labels {
			if want, ok := created[l.Run]; !ok || l.Text != want {
				t.Errorf("%s: label %d %q names run %q, want its creation time %q", c.Title, i, l.Text, l.Run, want)
			}
			if seen[l.Text] {
				t.Errorf("%s: label %q twice", c.Title, l.Text)
			}
			seen[l.Text] = true
			if r := l.Rect; r.R-r.L < 1 || r.L < c.Box.L-0.5 || r.R > c.Box.R+0.5 {
				t.Errorf("%s: label %q spans x %.1f..%.1f, outside the chart's %.1f..%.1f (or empty)", c.Title, l.Text, r.L, r.R, c.Box.L, c.Box.R)
			}
			for _, o := range c.Labels[:i] {
				a, b := l.Rect, o.Rect
				if a.L < b.R && b.L < a.R && a.T < b.B && b.T < a.B {
					t.Errorf("%s: labels %q (x %.1f..%.1f) and %q (x %.1f..%.1f) intersect", c.Title, l.Text, a.L, a.R, o.Text, b.L, b.R)
				}
			}
		}
		var want []string
		for _, r := range runs {
			want = append(want, r.ID)
		}
		if c.Points = dedupe(c.Points); !slices.Equal(c.Points, want) {
			t.Errorf("%s: points of runs %v, want %v", c.Title, c.Points, want)
		}
		titles := map[string]bool{}
		for _, ti := range c.Titles {
			if titles[ti] {
				t.Errorf("%s: two points titled %q", c.Title, ti)
			}
			titles[ti] = true
		}
		for _, r := range runs[20:25] {
			n := 0
			for _, ti := range c.Titles {
				if strings.HasPrefix(ti, r.ID+" · "+formatTime(r.CreatedAt)+": ") {
					n++
				}
			}
			// The wall chart has two points per run (wall and serial).
			if wantN := len(c.Titles) / len(runs); n != wantN {
				t.Errorf("%s: %d points titled with run %s and its time %s, want %d", c.Title, n, r.ID, formatTime(r.CreatedAt), wantN)
			}
		}
	}
	shoot(t, bctx, t.TempDir(), "history-axis.png")
}

// dedupe drops repeats of a value, keeping the first: the wall chart has a
// wall and a serial point per run.
func dedupe(xs []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
