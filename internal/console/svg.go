package console

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/apmtel/apmtel/internal/run"
)

// Geometry of the timeline, in SVG user units (the SVG scales to the page).
const (
	tlWidth  = 1000.0
	tlGutter = 170.0 // worker names
	tlRight  = 12.0
	tlRow    = 20.0
	tlGap    = 10.0 // between lanes
	tlTop    = 8.0
	tlAxis   = 26.0
)

type bar struct {
	X, Y, W, H float64
	Task       string
	Attempt    int
	Worker     string
	Status     run.TaskStatus
	Start      time.Time
	Title      string
	// Label is drawn inside the bar when it fits.
	Label string
	// WaitX is where the attempt was queued (its wait is drawn before it).
	WaitX float64
	// Errand marks the bar of a run's errand (not a task's attempt).
	Errand bool
}

type lane struct {
	Worker     string
	Y, H       float64
	LabelY     float64
	Rows       int
	Attempts   int
	Background bool
}

type tick struct {
	X     float64
	Label string
	// Anchor keeps the first and last labels of an axis inside the chart.
	Anchor string
}

type timeline struct {
	Width, Height float64
	Gutter        float64
	PlotRight     float64
	AxisY         float64
	Lanes         []lane
	Bars          []bar
	Ticks         []tick
	NotStarted    []string
	Span          string
}

// layoutTimeline draws one lane per worker (in the order the workers first
// started something) and one bar per attempt, from its recorded start to its
// finish (or to end while it runs). A worker runs several jobs at once
// (APMTEL_CONCURRENCY), so a lane has as many rows as it had attempts
// overlapping; each bar takes the first row free at its start. Bars are
// emitted in start order (attempts come sorted from the store). A run's
// errands (the source identity) get bars of their own in the lane of the
// worker that ran them, marked as errands.
func layoutTimeline(t0, end time.Time, attempts []run.Attempt, errands []run.Errand) timeline {
	tl := timeline{Width: tlWidth, Gutter: tlGutter, PlotRight: tlWidth - tlRight}
	isErrand := map[string]bool{}
	for _, e := range errands {
		name := errandLabel(e.Name)
		isErrand[name] = true
		attempts = append(attempts, run.Attempt{Task: name, Attempt: 1, Worker: e.Worker, Status: e.Status,
			StartedAt: e.StartedAt, FinishedAt: e.FinishedAt, TookMS: e.TookMS, Error: e.Error})
	}
	var started []run.Attempt
	for _, a := range attempts {
		if a.StartedAt.IsZero() {
			tl.NotStarted = append(tl.NotStarted, fmt.Sprintf("%s #%d", a.Task, a.Attempt))
			continue
		}
		started = append(started, a)
		if f := finish(a, end); f.After(end) {
			end = f
		}
	}
	sort.SliceStable(started, func(i, j int) bool { return started[i].StartedAt.Before(started[j].StartedAt) })
	span := end.Sub(t0)
	if span <= 0 {
		span = time.Millisecond
	}
	tl.Span = formatDur(span)
	plot := tl.PlotRight - tl.Gutter
	xOf := func(t time.Time) float64 {
		return tl.Gutter + plot*float64(t.Sub(t0))/float64(span)
	}

	// Rows per worker: greedy interval packing in start order.
	type laneState struct {
		idx  int
		ends []time.Time
	}
	lanes := map[string]*laneState{}
	var order []string
	rowOf := make([]int, len(started))
	for i, a := range started {
		w := a.Worker
		if w == "" {
			w = "(unknown worker)"
		}
		ls, ok := lanes[w]
		if !ok {
			ls = &laneState{idx: len(order)}
			lanes[w] = ls
			order = append(order, w)
		}
		row := -1
		for r, e := range ls.ends {
			if !e.After(a.StartedAt) {
				row = r
				break
			}
		}
		if row < 0 {
			row = len(ls.ends)
			ls.ends = append(ls.ends, time.Time{})
		}
		ls.ends[row] = finish(a, end)
		rowOf[i] = row
	}
	y := tlTop
	laneY := map[string]float64{}
	for i, w := range order {
		rows := len(lanes[w].ends)
		h := float64(rows) * tlRow
		n := 0
		for _, a := range started {
			if a.Worker == w || (a.Worker == "" && w == "(unknown worker)") {
				n++
			}
		}
		tl.Lanes = append(tl.Lanes, lane{Worker: w, Y: y - tlGap/2, H: h + tlGap, LabelY: y + h/2 + 4, Rows: rows, Attempts: n, Background: i%2 == 0})
		laneY[w] = y
		y += h + tlGap
	}
	tl.AxisY = y
	tl.Height = y + tlAxis
	for i, a := range started {
		w := a.Worker
		if w == "" {
			w = "(unknown worker)"
		}
		x0, x1 := xOf(a.StartedAt), xOf(finish(a, end))
		width := math.Max(x1-x0, 2)
		took := finish(a, end).Sub(a.StartedAt)
		title := fmt.Sprintf("%s attempt %d on %s: %s, started +%s, took %s", a.Task, a.Attempt, w, a.Status,
			formatDur(a.StartedAt.Sub(t0)), formatDur(took))
		if isErrand[a.Task] {
			title = fmt.Sprintf("%s on %s: %s, started +%s, took %s", a.Task, w, a.Status, formatDur(a.StartedAt.Sub(t0)), formatDur(took))
		}
		if !a.QueuedAt.IsZero() && a.QueuedAt.Before(a.StartedAt) {
			title += ", waited " + formatDur(a.StartedAt.Sub(a.QueuedAt)) + " in the queue"
		}
		if a.Error != "" {
			title += ": " + a.Error
		}
		b := bar{X: x0, Y: laneY[w] + float64(rowOf[i])*tlRow + 2, W: width, H: tlRow - 4, Task: a.Task, Attempt: a.Attempt,
			Worker: w, Status: a.Status, Start: a.StartedAt, Title: title, WaitX: x0, Errand: isErrand[a.Task]}
		if !a.QueuedAt.IsZero() && a.QueuedAt.Before(a.StartedAt) {
			b.WaitX = xOf(a.QueuedAt)
		}
		label := a.Task
		if a.Attempt > 1 {
			label = fmt.Sprintf("%s #%d", a.Task, a.Attempt)
		}
		if float64(len(label))*6.2+6 < width {
			b.Label = label
		}
		tl.Bars = append(tl.Bars, b)
	}
	step := niceStep(span, 8)
	for t := time.Duration(0); t <= span; t += step {
		tl.Ticks = append(tl.Ticks, tick{X: tl.Gutter + plot*float64(t)/float64(span), Label: formatTick(t)})
	}
	return tl
}

// errandLabel is how an errand is named on the timeline: apart from the tasks.
func errandLabel(name string) string { return "errand: " + name }

func finish(a run.Attempt, end time.Time) time.Time {
	if !a.FinishedAt.IsZero() {
		return a.FinishedAt
	}
	return end
}

// niceStep is the 1-2-5 step that gives at most n intervals over span.
func niceStep(span time.Duration, n int) time.Duration {
	step := time.Millisecond
	for {
		for _, m := range []time.Duration{1, 2, 5} {
			if span/(step*m) <= time.Duration(n) {
				return step * m
			}
		}
		step *= 10
	}
}

func formatTick(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%gs", d.Seconds())
	}
	return d.String()
}

// --- /history

type point struct {
	X, Y  float64
	Run   string
	Value string
	Class string
	// When is the run's creation time to the second, for the point's title.
	When string
}

// xLabel names the run at X on a chart's x axis.
type xLabel struct {
	X      float64
	Label  string
	Anchor string
	Run    string
}

type series struct {
	Name   string
	Class  string
	Points []point
	Path   string
}

type chart struct {
	Title         string
	Width, Height float64
	Left, Right   float64
	Top, Bottom   float64
	MarkY         float64 // lower end of the x axis' marks of the labelled runs
	Series        []series
	YTicks        []tick
	XLabels       []xLabel
	Last          string
}

type histRow struct {
	Run    run.Run
	Wall   string
	Serial string
	Gain   string
}

type historyData struct {
	N      int
	Kind   string
	Runs   []histRow
	Wall   chart
	Tasks  []chart
	Sealed int
	// Cluster is the cluster whose runs these are (?cluster=), kept by the form.
	Cluster string
}

// historyView charts the newest n sealed runs (of kind, when given), oldest
// first: wall time beside the serial sum of the tasks' took (what the run
// would take if the tasks ran one after another, as Kibana runs them), and
// one small chart per task.
func historyView(runs []run.Run, n int, kind string) historyData {
	var sealed []run.Run
	for _, r := range runs {
		if r.Status == run.StatusSealed && r.Report != nil && (kind == "" || string(r.Kind) == kind) {
			sealed = append(sealed, r)
		}
	}
	if len(sealed) > n {
		sealed = sealed[:n]
	}
	for i, j := 0, len(sealed)-1; i < j; i, j = i+1, j-1 {
		sealed[i], sealed[j] = sealed[j], sealed[i]
	}
	v := historyData{N: n, Kind: kind, Sealed: len(sealed)}
	wallS := series{Name: "wall time", Class: "wall"}
	serialS := series{Name: "serial sum of took", Class: "serial"}
	var xs []axisRun
	taskVals := map[string][]float64{}
	taskFailed := map[string][]bool{}
	var taskOrder []string
	for i, r := range sealed {
		w := r.SealedAt.Sub(r.CreatedAt)
		var sum int64
		for _, name := range r.Tasks {
			ts, ok := r.Report.Tasks[name]
			if _, seen := taskVals[name]; !seen {
				taskOrder = append(taskOrder, name)
				taskVals[name] = make([]float64, len(sealed))
				taskFailed[name] = make([]bool, len(sealed))
				for k := range taskVals[name] {
					taskVals[name][k] = math.NaN()
				}
			}
			if !ok {
				continue
			}
			sum += ts.TookMS
			taskVals[name][i] = float64(ts.TookMS) / 1000
			taskFailed[name][i] = ts.Status != run.TaskOK
		}
		serial := time.Duration(sum) * time.Millisecond
		gain := "-"
		if w > 0 {
			gain = fmt.Sprintf("%.1f×", serial.Seconds()/w.Seconds())
		}
		v.Runs = append(v.Runs, histRow{Run: r, Wall: formatDur(w), Serial: formatDur(serial), Gain: gain})
		when := formatTime(r.CreatedAt)
		wallS.Points = append(wallS.Points, point{Run: r.ID, Y: w.Seconds(), Value: formatDur(w), When: when})
		serialS.Points = append(serialS.Points, point{Run: r.ID, Y: serial.Seconds(), Value: formatDur(serial), When: when})
		xs = append(xs, axisRun{ID: r.ID, At: r.CreatedAt})
	}
	// Newest runs first in the table.
	rows := v.Runs
	for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
		rows[i], rows[j] = rows[j], rows[i]
	}
	v.Wall = plotChart("Run wall time and the serial sum of the tasks' took (seconds)", 1000, 260, xs, wallS, serialS)
	for _, name := range taskOrder {
		s := series{Name: name, Class: "task"}
		for i, val := range taskVals[name] {
			if math.IsNaN(val) {
				continue
			}
			p := point{Run: sealed[i].ID, Y: val, Value: formatDur(time.Duration(val * float64(time.Second))), When: formatTime(sealed[i].CreatedAt)}
			p.X = float64(i)
			if taskFailed[name][i] {
				p.Class = "failed"
			}
			s.Points = append(s.Points, p)
		}
		c := plotChart(name, 320, 120, xs, s)
		if len(s.Points) > 0 {
			c.Last = s.Points[len(s.Points)-1].Value
		}
		v.Tasks = append(v.Tasks, c)
	}
	return v
}

// axisRun is a run on a chart's x axis.
type axisRun struct {
	ID string
	At time.Time
}

// plotChart places the series' points (x: the index of the run, unless a
// point carries its own index in X; y: seconds) into a width×height chart.
func plotChart(title string, width, height float64, xs []axisRun, ss ...series) chart {
	c := chart{Title: title, Width: width, Height: height, Left: 52, Right: width - 10, Top: 10, Bottom: height - 22, MarkY: height - 18}
	maxY := 0.0
	for _, s := range ss {
		for _, p := range s.Points {
			maxY = math.Max(maxY, p.Y)
		}
	}
	if maxY == 0 {
		maxY = 1
	}
	step := niceStep(time.Duration(maxY*float64(time.Second)), 4).Seconds()
	top := math.Ceil(maxY/step) * step
	n := len(xs)
	xOf := func(i float64) float64 {
		if n <= 1 {
			return (c.Left + c.Right) / 2
		}
		return c.Left + (c.Right-c.Left)*i/float64(n-1)
	}
	yOf := func(v float64) float64 { return c.Bottom - (c.Bottom-c.Top)*v/top }
	for v := 0.0; v <= top+step/1000; v += step {
		c.YTicks = append(c.YTicks, tick{X: yOf(v), Label: formatTick(time.Duration(v * float64(time.Second)))})
	}
	c.XLabels = xLabels(xs, xOf, c.Width)
	for _, s := range ss {
		path := ""
		for i := range s.Points {
			p := &s.Points[i]
			idx := float64(i)
			if s.Class == "task" {
				idx = p.X
			}
			p.X, p.Y = xOf(idx), yOf(p.Y)
			cmd := "L"
			if i == 0 {
				cmd = "M"
			}
			path += fmt.Sprintf("%s%.1f %.1f ", cmd, p.X, p.Y)
		}
		s.Path = path
		c.Series = append(c.Series, s)
	}
	return c
}

// Width of an x-axis label, in SVG user units: the labels are 11 px text
// (console.css), and a digit of DejaVu Sans, the widest of the fonts the
// stylesheet names, is 0.636 em, 7 units; colons and dashes are narrower, so
// len×labelChar bounds the label from above. labelGap keeps neighbours apart.
const (
	labelChar = 7.0
	labelGap  = 8.0
)

// axisLayout is the shortest time layout under which runs created at
// different times get different labels: the date only when the runs span more
// than one day (UTC), seconds when two share a minute, milliseconds when two
// share a second. Runs created in the same millisecond share a label; their
// points' titles name the run.
func axisLayout(xs []axisRun) string {
	layout := "15:04"
	for _, x := range xs {
		if x.At.UTC().Truncate(24*time.Hour) != xs[0].At.UTC().Truncate(24*time.Hour) {
			layout = "01-02 15:04"
			break
		}
	}
	shares := func(unit time.Duration) bool {
		seen := map[int64]bool{}
		for _, x := range xs {
			k := x.At.UTC().Truncate(unit).UnixNano()
			if seen[k] {
				return true
			}
			seen[k] = true
		}
		return false
	}
	switch {
	case shares(time.Second):
		layout += ":05.000"
	case shares(time.Minute):
		layout += ":05"
	}
	return layout
}

// xLabels labels as many runs as fit the chart's width without two labels
// touching: every k-th run for the smallest k that fits, always the first and
// the last (the newest run is the one a reader looks for).
func xLabels(xs []axisRun, xOf func(float64) float64, width float64) []xLabel {
	n := len(xs)
	if n == 0 {
		return nil
	}
	layout := axisLayout(xs)
	// A label is centred under its run unless that would cut it at the
	// chart's edge (the oldest and the newest runs sit near the edges).
	label := func(i int) xLabel {
		l := xLabel{X: xOf(float64(i)), Label: xs[i].At.UTC().Format(layout), Anchor: "middle", Run: xs[i].ID}
		half := float64(len(l.Label)) * labelChar / 2
		switch {
		case l.X-half < 0:
			l.Anchor = "start"
		case l.X+half > width:
			l.Anchor = "end"
		}
		return l
	}
	if n == 1 {
		return []xLabel{label(0)}
	}
	// The extent [lo, hi] a label covers under its anchor.
	extent := func(l xLabel) (float64, float64) {
		w := float64(len(l.Label)) * labelChar
		switch l.Anchor {
		case "start":
			return l.X, l.X + w
		case "end":
			return l.X - w, l.X
		}
		return l.X - w/2, l.X + w/2
	}
	fits := func(ls []xLabel) bool {
		for i := 1; i < len(ls); i++ {
			_, hi := extent(ls[i-1])
			lo, _ := extent(ls[i])
			if lo < hi+labelGap {
				return false
			}
		}
		return true
	}
	for k := 1; k < n; k++ {
		var ls []xLabel
		for i := 0; i < n-1; i += k {
			ls = append(ls, label(i))
		}
		last := label(n - 1)
		// The newest run's label wins over a regular one it would touch.
		for len(ls) > 1 && !fits([]xLabel{ls[len(ls)-1], last}) {
			ls = ls[:len(ls)-1]
		}
		ls = append(ls, last)
		if fits(ls) {
			return ls
		}
	}
	// Not even the first and the last fit: the newest alone.
	return []xLabel{label(n - 1)}
}
