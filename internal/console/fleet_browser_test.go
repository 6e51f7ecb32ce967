package console

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/apmtel/apmtel/internal/backoff"
	"github.com/apmtel/apmtel/internal/fleet"
	"github.com/apmtel/apmtel/internal/fleetstatus"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/runtest"
	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/scheduler"
)

const fleetInterval = 12 * time.Hour

var fleetTasks = []string{"agents", "cardinality", "services"}

// clustersFile is a clusters file naming names (their URLs are never
// contacted: the console only reads Redis).
func clustersFile(t testing.TB, names ...string) fleet.Set {
	t.Helper()
	var b strings.Builder
	b.WriteString("clusters:\n")
	for i, n := range names {
		fmt.Fprintf(&b, "  - name: %s\n    urls: [\"http://127.0.0.1:%d\"]\n", n, 19200+i%1000)
	}
	set, err := fleet.Parse("clusters.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// fleetFixture is three clusters in real Redis, each with runs in its own
// key space: eu-prod healthy, us-east whose last run failed a task, and
// ap-south backing off after three failed runs.
type fleetFixture struct {
	url  string
	set  fleet.Set
	runs map[string][]run.Run // oldest first
	rdb  *redis.Client
}

func newFleetFixture(t *testing.T) fleetFixture {
	t.Helper()
	rdb, _ := testenv.RedisDB(t)
	ctx := context.Background()
	f := fleetFixture{set: clustersFile(t, "ap-south", "eu-prod", "us-east"), runs: map[string][]run.Run{}, rdb: rdb}
	slot := time.Now().UTC().Truncate(fleetInterval)
	seed := func(cluster string, back int, tookMS int, fail string) {
		t.Helper()
		st := run.NewStore(rdb, keys.NewFor("", cluster), time.Hour, 50)
		at := slot.Add(-time.Duration(back) * fleetInterval)
		spec := runtest.Spec{ID: scheduler.ScheduledRunID(at), Trigger: "schedule", Tasks: fleetTasks, Start: at.Add(time.Minute),
			Upload: run.UploadUploaded, Took: func(i, _ int) time.Duration { return time.Duration(tookMS+i) * time.Millisecond }}
		if fail != "" {
			spec.Fail = map[string]string{"cardinality": fail}
			spec.Upload = ""
		}
		r, err := runtest.Seed(ctx, st, spec)
		if err != nil {
			t.Fatal(err)
		}
		f.runs[cluster] = append(f.runs[cluster], r)
	}
	seed("eu-prod", 2, 100, "")
	seed("eu-prod", 1, 200, "")
	seed("us-east", 2, 300, "")
	seed("us-east", 1, 900, "too_many_buckets_exception")
	bst := backoff.NewStore(rdb, keys.NewFor("", "ap-south"), backoff.DefaultPolicy(fleetInterval), 0)
	for back := 3; back >= 1; back-- {
		seed("ap-south", back, 50, "connection refused")
		r := f.runs["ap-south"][len(f.runs["ap-south"])-1]
		// Counted as the outcomes arrive now: the third starts a backoff
		// of one interval from now.
		if _, err := bst.Failed(ctx, r.ID, time.Now().Add(-time.Duration(back)*time.Minute), "dial tcp 127.0.0.1:19200: connect: connection refused"); err != nil {
			t.Fatal(err)
		}
	}
	f.url = serveOptions(t, Options{Runs: run.NewStore(rdb, keys.New(""), time.Hour, 50), MonitorPath: "/monitoring",
		Fleet: fleet.Static(f.set), Clusters: fleetstatus.Reader{Redis: rdb}, Schedule: fleetstatus.Schedule{Interval: fleetInterval, Spread: 3 * time.Hour}})
	return f
}

type fleetCells struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Href     string `json:"href"`
	Run      string `json:"run"`
	RunHref  string `json:"runHref"`
	Success  string `json:"success"`
	Duration string `json:"duration"`
	Failed   string `json:"failed"`
	Upload   string `json:"upload"`
	Backoff  string `json:"backoff"`
	Next     string `json:"next"`
}

const readFleet = `[...document.querySelectorAll('#fleet tr.cluster')].map(r => {
	const t = s => (r.querySelector(s)?.textContent ?? '').trim().replace(/\s+/g, ' ');
	return {name: r.dataset.cluster, state: r.dataset.state, href: r.querySelector('td.name a').getAttribute('href'),
		run: t('td.state a.run'), runHref: r.querySelector('td.state a.run')?.getAttribute('href') ?? '',
		success: t('td.success'), duration: t('td.duration'), failed: t('td.failed'), upload: t('td.upload'),
		backoff: t('td.backoff'), next: t('td.next')};
})`

func reversed(xs []string) []string {
	out := slices.Clone(xs)
	slices.Reverse(out)
	return out
}

func names(rows []fleetCells) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.Name)
	}
	return out
}

func TestFleetPageInBrowser(t *testing.T) {
	f := newFleetFixture(t)
	ctx := browser(t)
	dir := t.TempDir()
	read := func(t *testing.T) []fleetCells {
		return must(chromedp.Run(ctx, chromedp.Evaluate[[]fleetCells](readFleet)))(t)
	}
	last := func(name string) run.Run { rs := f.runs[name]; return rs[len(rs)-1] }

	t.Run("rows", func(t *testing.T) {
		open(t, ctx, f.url+FleetPath, "#fleet")
		rows := read(t)
		// Default sort: the most urgent first.
		if got, want := names(rows), []string{"ap-south", "us-east", "eu-prod"}; !slices.Equal(got, want) {
			t.Fatalf("rows %v, want %v (backing off, failed, ok)", got, want)
		}
		byName := map[string]fleetCells{}
		for _, r := range rows {
			byName[r.Name] = r
		}
		for _, tc := range []struct {
			name, state, failed, upload string
		}{
			{"ap-south", "backing-off", "1 cardinality", "pending"},
			{"us-east", "failed", "1 cardinality", "pending"},
			{"eu-prod", "ok", "0", "uploaded"},
		} {
			r, l := byName[tc.name], last(tc.name)
			if r.State != tc.state || r.Failed != tc.failed {
				t.Errorf("%s: state %q, failed %q; want %q, %q", tc.name, r.State, r.Failed, tc.state, tc.failed)
			}
			if r.Upload != tc.upload {
				t.Errorf("%s: upload %q, want %q", tc.name, r.Upload, tc.upload)
			}
			if want := formatDur(l.SealedAt.Sub(l.CreatedAt)); r.Duration != want {
				t.Errorf("%s: duration %q, want its last run's %q", tc.name, r.Duration, want)
			}
			if r.Run != l.ID || r.RunHref != RunURL(l.ID)+"?cluster="+tc.name {
				t.Errorf("%s: last run %q → %q, want %q in its own key space", tc.name, r.Run, r.RunHref, l.ID)
			}
			if r.Href != "/runs?cluster="+tc.name {
				t.Errorf("%s: links to %q", tc.name, r.Href)
			}
			if r.Next == "-" || r.Next == "" {
				t.Errorf("%s: no next due time", tc.name)
			}
		}
		if b := byName["ap-south"].Backoff; !strings.HasPrefix(b, "backing off until ") || !strings.HasSuffix(b, ": dial tcp 127.0.0.1:19200: connect: connection refused") {
			t.Errorf("ap-south backoff cell %q", b)
		}
		if b := byName["eu-prod"].Backoff; b != "-" {
			t.Errorf("eu-prod backoff cell %q, want -", b)
		}
		if s := byName["ap-south"].Success; s != "never" {
			t.Errorf("ap-south last success %q, want never", s)
		}
		if s := byName["us-east"].Success; !strings.HasSuffix(s, " ago") {
			t.Errorf("us-east last success %q, want an age", s)
		}
		summary := must(chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#summary"))))(t)
		if want := "3 clusters: backing-off 1 · failed 1 · ok 1"; strings.Join(strings.Fields(summary), " ") != want {
			t.Errorf("summary %q, want %q", summary, want)
		}
		shoot(t, ctx, dir, "fleet.png")
	})

	t.Run("sort", func(t *testing.T) {
		open(t, ctx, f.url+FleetPath, "#fleet")
		// Clicking a header sorts by it; clicking it again reverses.
		for _, want := range [][]string{{"ap-south", "eu-prod", "us-east"}, {"us-east", "eu-prod", "ap-south"}} {
			if err := chromedp.Do(ctx, chromedp.Click(`#fleet th a[data-sort="name"]`), chromedp.WaitVisible("#fleet")); err != nil {
				t.Fatal(err)
			}
			if got := names(read(t)); !slices.Equal(got, want) {
				t.Errorf("sorted by name: %v, want %v", got, want)
			}
		}
		// Duration: the last runs' wall times, shortest first.
		open(t, ctx, f.url+FleetPath+"?sort=duration", "#fleet")
		rows := read(t)
		var durs []time.Duration
		for _, r := range rows {
			l := last(r.Name)
			durs = append(durs, l.SealedAt.Sub(l.CreatedAt))
		}
		if !slices.IsSorted(durs) || len(durs) != 3 {
			t.Errorf("?sort=duration: %v with durations %v, want ascending", names(rows), durs)
		}
		open(t, ctx, f.url+FleetPath+"?sort=-duration", "#fleet")
		if got := names(read(t)); !slices.Equal(got, reversed(names(rows))) {
			t.Errorf("?sort=-duration: %v, want %v reversed", got, names(rows))
		}
	})

	t.Run("filter", func(t *testing.T) {
		open(t, ctx, f.url+FleetPath, "#fleet")
		// The form: a name substring, submitted as a GET.
		if err := chromedp.Do(ctx, chromedp.SetValue(`input[name="q"]`, "EAST"), chromedp.Submit(`input[name="q"]`), chromedp.WaitVisible("#fleet")); err != nil {
			t.Fatal(err)
		}
		if got := names(read(t)); !slices.Equal(got, []string{"us-east"}) {
			t.Errorf("q=EAST: %v, want [us-east]", got)
		}
		open(t, ctx, f.url+FleetPath+"?status=backing-off", "#fleet")
		if got := names(read(t)); !slices.Equal(got, []string{"ap-south"}) {
			t.Errorf("status=backing-off: %v", got)
		}
		open(t, ctx, f.url+FleetPath+"?status=ok&q=-", "#fleet")
		if got := names(read(t)); !slices.Equal(got, []string{"eu-prod"}) {
			t.Errorf("status=ok&q=-: %v", got)
		}
		open(t, ctx, f.url+FleetPath+"?q=nowhere", "p.empty")
	})

	t.Run("cluster runs", func(t *testing.T) {
		open(t, ctx, f.url+FleetPath, "#fleet")
		if err := chromedp.Do(ctx, chromedp.Click(`tr[data-cluster="us-east"] td.name a`), chromedp.WaitVisible("#runs")); err != nil {
			t.Fatal(err)
		}
		ids := must(chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('tr.run')].map(r => r.dataset.run)`)))(t)
		want := []string{f.runs["us-east"][1].ID, f.runs["us-east"][0].ID}
		if !slices.Equal(ids, want) {
			t.Errorf("us-east's runs page lists %v, want its own runs %v", ids, want)
		}
		if bar := must(chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#cluster"))))(t); !strings.Contains(bar, "us-east") {
			t.Errorf("cluster bar %q", bar)
		}
		// Its run's page reads the run's tasks from the same key space.
		if err := chromedp.Do(ctx, chromedp.Click(`tr.run[data-run="`+want[0]+`"] a`), chromedp.WaitVisible("#tasks")); err != nil {
			t.Fatal(err)
		}
		errCell := must(chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#tasks tr[data-task="cardinality"] td.error`))))(t)
		if !strings.Contains(errCell, "too_many_buckets_exception") {
			t.Errorf("us-east run's failed task says %q", errCell)
		}
	})
}

// A fleet of 1,000 clusters renders on one page, compact; the figure of
// the render is in BenchmarkFleetPage (docs/benchmarks.md).
func TestFleetPage1000InBrowser(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	ctx := context.Background()
	const n = 1000
	all := make([]string, n)
	for i := range all {
		all[i] = fmt.Sprintf("cluster-%04d", i)
	}
	set := clustersFile(t, all...)
	slot := time.Now().UTC().Truncate(fleetInterval)
	failed := 0
	for i, name := range all {
		if i%10 == 9 {
			continue // never ran
		}
		spec := runtest.Spec{ID: scheduler.ScheduledRunID(slot), Trigger: "schedule", Tasks: fleetTasks[:1], Start: slot.Add(time.Duration(i) * time.Second),
			Upload: run.UploadUploaded}
		if i%7 == 0 {
			spec.Fail, spec.Upload = map[string]string{fleetTasks[0]: "boom"}, ""
			failed++
		}
		if _, err := runtest.Seed(ctx, run.NewStore(rdb, keys.NewFor("", name), time.Hour, 50), spec); err != nil {
			t.Fatal(err)
		}
	}
	url := serveOptions(t, Options{Runs: run.NewStore(rdb, keys.New(""), time.Hour, 50), MonitorPath: "/monitoring",
		Fleet: fleet.Static(set), Clusters: fleetstatus.Reader{Redis: rdb}, Schedule: fleetstatus.Schedule{Interval: fleetInterval}})
	bctx := browser(t)
	start := time.Now()
	open(t, bctx, url+FleetPath+"?n=1000&sort=name", "#fleet")
	t.Logf("1,000-row fleet page loaded in the browser in %s", time.Since(start).Round(time.Millisecond))
	rows := must(chromedp.Run(bctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#fleet tr.cluster')].map(r => r.dataset.cluster)`)))(t)
	if !slices.Equal(rows, all) {
		t.Fatalf("%d rows, want the %d clusters in name order", len(rows), n)
	}
	states := must(chromedp.Run(bctx, chromedp.Evaluate[map[string]int](`[...document.querySelectorAll('#fleet tr.cluster')].reduce((m, r) => (m[r.dataset.state] = (m[r.dataset.state] ?? 0) + 1, m), {})`)))(t)
	if want := (map[string]int{"failed": failed, "never": n / 10, "ok": n - n/10 - failed}); fmt.Sprint(states) != fmt.Sprint(want) {
		t.Errorf("states %v, want %v", states, want)
	}
	// Compact: a row is one line of text.
	h := must(chromedp.Run(bctx, chromedp.Evaluate[float64](`document.querySelector('#fleet tr.cluster[data-state="ok"]').getBoundingClientRect().height`)))(t)
	if h > 28 {
		t.Errorf("a row is %.0f px high: not compact", h)
	}
	shoot(t, bctx, t.TempDir(), "fleet-1000.png")

	// The default page holds 100 rows and links to the next.
	open(t, bctx, url+FleetPath+"?sort=name", "#fleet")
	rows = must(chromedp.Run(bctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#fleet tr.cluster')].map(r => r.dataset.cluster)`)))(t)
	if !slices.Equal(rows, all[:fleetPageDefault]) {
		t.Errorf("first page: %d rows from %v", len(rows), rows[:1])
	}
	if err := chromedp.Do(bctx, chromedp.Click(`a[rel="next"]`), chromedp.WaitVisible("#fleet")); err != nil {
		t.Fatal(err)
	}
	rows = must(chromedp.Run(bctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#fleet tr.cluster')].map(r => r.dataset.cluster)`)))(t)
	if !slices.Equal(rows, all[fleetPageDefault:2*fleetPageDefault]) {
		t.Errorf("second page: %d rows from %v", len(rows), rows[:1])
	}
}
