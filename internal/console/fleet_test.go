package console

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apmtel/apmtel/internal/backoff"
	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/fleet"
	"github.com/apmtel/apmtel/internal/fleetstatus"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/runtest"
	"github.com/apmtel/apmtel/internal/testenv"
)

// Bad parameters get a clear error; a cluster's runs and run pages read
// its own key space only, and a cluster not in the set is not found.
func TestFleetRequests(t *testing.T) {
	f := newFleetFixture(t)
	east := f.runs["us-east"][1].ID
	for _, tc := range []struct {
		path string
		code int
		want []string
		not  []string
	}{
		{"/fleet?status=bogus", 400, []string{`unknown status "bogus"`}, nil},
		{"/fleet?sort=age", 400, []string{`unknown sort "age"`}, nil},
		{"/fleet?n=10&page=99", 200, []string{"Clusters 1–3 of 3", `data-cluster="eu-prod"`}, nil},
		{"/fleet?q=%3Cscript%3E", 200, []string{"No cluster whose name contains “&lt;script&gt;”"}, []string{"<script>"}},
		{"/runs?cluster=nope", 404, []string{`cluster "nope" is not in the cluster set`}, nil},
		{"/runs?cluster=us-east", 200, []string{`data-run="` + east + `"`, `href="/runs/` + east + `?cluster=us-east"`, `name="cluster" value="us-east"`}, nil},
		{"/runs/" + east + "?cluster=us-east", 200, []string{"too_many_buckets_exception", `id="cluster"`}, nil},
		// The same id in the default key space is another run, absent here.
		{"/runs/" + east, 404, []string{"not in the history"}, nil},
		{"/history?cluster=eu-prod", 200, []string{`href="/runs/` + f.runs["eu-prod"][1].ID + `?cluster=eu-prod"`, `name="cluster" value="eu-prod"`}, nil},
		{"/runs", 200, []string{"No runs"}, []string{east}},
	} {
		code, body := get(t, f.url+tc.path)
		if code != tc.code {
			t.Errorf("GET %s = %d, want %d: %.300s", tc.path, code, tc.code, body)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s lacks %q", tc.path, w)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(body, w) {
				t.Errorf("GET %s has %q", tc.path, w)
			}
		}
	}
}

// Single-cluster mode: the fleet page shows the one cluster of the
// APMTEL_SOURCE_* settings, and every other page is what it was without a
// fleet, but for the menu's link to the fleet page.
func TestFleetSingleCluster(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	st := run.NewStore(rdb, keys.New(""), time.Hour, 50)
	r, err := runtest.Seed(context.Background(), st, runtest.Spec{ID: "manual-1", Tasks: fleetTasks, Start: time.Now().Add(-time.Hour), Upload: run.UploadUploaded})
	if err != nil {
		t.Fatal(err)
	}
	set, err := fleet.FromSource(keys.DefaultSource, config.Cluster{URLs: []string{"http://127.0.0.1:9200"}})
	if err != nil {
		t.Fatal(err)
	}
	base := Options{Runs: st, MonitorPath: "/monitoring", Now: func() time.Time { return r.SealedAt.Add(time.Minute) }}
	plain := serveOptions(t, base)
	withFleet := base
	withFleet.Fleet, withFleet.Clusters = fleet.Static(set), fleetstatus.Reader{Redis: rdb}
	fl := serveOptions(t, withFleet)

	code, body := get(t, fl+FleetPath)
	if code != 200 || strings.Count(body, `<tr class="cluster"`) != 1 || !strings.Contains(body, `data-cluster="default"`) ||
		!strings.Contains(body, `href="/runs/manual-1"`) || !strings.Contains(body, `data-state="ok"`) {
		t.Errorf("fleet page of one cluster (%d): %.2000s", code, body)
	}
	nav := `<a href="/fleet">Fleet</a>`
	for _, path := range []string{"/runs", "/runs/manual-1", "/history", "/runs?cluster=default"} {
		_, a := get(t, plain+path)
		_, b := get(t, fl+path)
		if !strings.Contains(b, nav) {
			t.Errorf("%s with a fleet: no link to the fleet page", path)
		}
		b = strings.Replace(b, "    "+nav+"\n", "", 1)
		if path == "/runs?cluster=default" {
			b = strings.Replace(b, `<p class="cluster-bar" id="cluster">Cluster <b>default</b> · <a href="/fleet">all clusters</a></p>`+"\n", "", 1)
			b = strings.Replace(b, `<input type="hidden" name="cluster" value="default">`+"\n  ", "", 1)
		}
		// The document's fetchedAt is the time of the page's build.
		a, b = fetchedAt.ReplaceAllString(a, "T"), fetchedAt.ReplaceAllString(b, "T")
		if a != b {
			t.Errorf("%s differs with a fleet:\n%s\n---\n%s", path, a, b)
		}
	}
	// Without a fleet there is no fleet page.
	if code, _ := get(t, plain+FleetPath); code != http.StatusNotFound {
		t.Errorf("GET /fleet without a fleet = %d", code)
	}
	if err := Register(http.NewServeMux(), Options{Runs: st, Fleet: fleet.Static(set)}); err == nil || !strings.Contains(err.Error(), "Clusters.Redis") {
		t.Errorf("a fleet without Redis registered: %v", err)
	}
}

var fetchedAt = regexp.MustCompile(`&#34;fetchedAt&#34;: &#34;[^&]*&#34;`)

func TestFleetStateAndSort(t *testing.T) {
	at := func(h int) *time.Time { x := time.Date(2026, 12, 4, h, 0, 0, 0, time.UTC); return &x }
	rows := []fleetRow{
		{Name: "b", State: stateOK, SuccessAt: at(3), durationMS: 30},
		{Name: "a", State: stateFailed, SuccessAt: at(1), durationMS: 20, Failed: []string{"x"}},
		{Name: "c", State: stateBackingOff, durationMS: 10},
		{Name: "d", State: stateOK, SuccessAt: at(2), durationMS: 20},
	}
	for _, tc := range []struct{ sort, want string }{
		{"status", "c a b d"},
		{"-status", "b d a c"}, // ties by name, ascending
		{"name", "a b c d"},
		{"-name", "d c b a"},
		{"success", "c a d b"}, // never first, then oldest
		{"-success", "b d a c"},
		{"duration", "c a d b"}, // ties by name
		{"-duration", "b a d c"},
		{"failed", "b c d a"},
	} {
		rs := append([]fleetRow(nil), rows...)
		sortFleet(rs, tc.sort)
		var got []string
		for _, r := range rs {
			got = append(got, r.Name)
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("sort %s: %v, want %s", tc.sort, got, tc.want)
		}
	}
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{-time.Second, "0s ago"}, {42 * time.Second, "42s ago"}, {90 * time.Minute, "1h 30m ago"}, {50 * time.Hour, "2d 2h ago"}} {
		if got := ago(tc.d); got != tc.want {
			t.Errorf("ago(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// fleetData is n clusters with a run each in memory: most ok, every 7th
// failed, every 10th never ran, every 13th backing off.
func fleetData(tb testing.TB, n int) (fleet.Set, map[string]fleetstatus.ClusterState, time.Time) {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("cluster-%04d", i)
	}
	set := clustersFile(tb, names...)
	now := time.Date(2026, 12, 4, 17, 0, 0, 0, time.UTC)
	slot := now.Truncate(fleetInterval)
	states := map[string]fleetstatus.ClusterState{}
	pol := backoff.DefaultPolicy(fleetInterval)
	for i, name := range names {
		if i%10 == 9 {
			continue
		}
		created := slot.Add(time.Duration(i) * time.Second)
		r := run.Run{ID: "sched-" + slot.Format("20060102T150405Z"), Source: name, Kind: run.KindFull, Status: run.StatusSealed,
			CreatedAt: created, SealedAt: created.Add(time.Duration(30+i%60) * time.Second), Upload: run.Upload{State: run.UploadUploaded},
			Report: &run.Report{}}
		var st fleetstatus.ClusterState
		if i%7 == 0 {
			r.Report.Failed = []string{"services", "cardinality"}
		}
		if i%13 == 0 {
			for k := range 3 {
				st.Backoff = st.Backoff.Failed(pol, fmt.Sprintf("r%d", k), now.Add(-time.Hour), "dial tcp 10.0.0.1:9200: connect: connection refused")
			}
		}
		st.Runs = []run.Run{r}
		states[name] = st
	}
	return set, states, now
}

// BenchmarkFleetPage renders the fleet page of 1,000 clusters on one page
// (rows from fleetstatus.Rows, the view, the template), without Redis.
func BenchmarkFleetPage(b *testing.B) {
	set, states, now := fleetData(b, 1000)
	c, err := newConsole(Options{Runs: run.NewStore(nil, keys.New(""), 0, 1), Fleet: fleet.Static(set),
		Clusters: fleetstatus.Reader{Redis: redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})}})
	if err != nil {
		b.Fatal(err)
	}
	fq := fleetQuery{sort: "status", page: 1, per: fleetPageMax}
	var size int
	for b.Loop() {
		rows := fleetstatus.Rows(set, states, fleetstatus.Schedule{Interval: fleetInterval, Spread: 3 * time.Hour}, now)
		v := c.fleetView(rows, states, now, fq)
		var w countWriter
		if err := c.tmpl["fleet"].Execute(&w, page{Title: "Fleet", Nav: "fleet", Fleet: true, Data: v}); err != nil {
			b.Fatal(err)
		}
		if len(v.Rows) != 1000 {
			b.Fatalf("%d rows", len(v.Rows))
		}
		size = int(w)
	}
	b.ReportMetric(float64(size)/1024, "KiB/page")
}

type countWriter int

func (w *countWriter) Write(p []byte) (int, error) { *w += countWriter(len(p)); return len(p), nil }

var _ io.Writer = (*countWriter)(nil)

// Each row's state, from the most urgent: a disabled cluster says why, a
// failed upload counts as failed, a run still going is running.
func TestFleetRowStates(t *testing.T) {
	set, err := fleet.Parse("c.yaml", []byte(`clusters:
  - name: off
    urls: ["http://127.0.0.1:9200"]
    enabled: false
  - name: upload
    urls: ["http://127.0.0.1:9201"]
  - name: going
    urls: ["http://127.0.0.1:9202"]
  - name: stopped
    urls: ["http://127.0.0.1:9203"]
  - name: fresh
    urls: ["http://127.0.0.1:9204"]
`))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 4, 17, 0, 0, 0, time.UTC)
	at := now.Add(-time.Hour)
	states := map[string]fleetstatus.ClusterState{
		"off": {Runs: []run.Run{{ID: "r1", Status: run.StatusSealed, CreatedAt: at, SealedAt: at.Add(time.Minute), Report: &run.Report{}}}},
		"upload": {Runs: []run.Run{{ID: "r2", Status: run.StatusSealed, CreatedAt: at, SealedAt: at.Add(time.Minute), Report: &run.Report{},
			Upload: run.Upload{State: run.UploadFailed, Error: "403 Forbidden"}}}},
		"going":   {Runs: []run.Run{{ID: "r3", Status: run.StatusOpen, CreatedAt: at}}},
		"stopped": {Runs: []run.Run{{ID: "r4", Status: run.StatusCancelled, CreatedAt: at, ClosedAt: at.Add(2 * time.Minute)}}},
	}
	c := &console{o: Options{Runs: run.NewStore(nil, keys.New(""), 0, 1)}}
	v := c.fleetView(fleetstatus.Rows(set, states, fleetstatus.Schedule{Interval: fleetInterval}, now), states, now,
		fleetQuery{sort: "name", page: 1, per: fleetPageDefault})
	got := map[string]fleetRow{}
	for _, r := range v.Rows {
		got[r.Name] = r
	}
	for _, tc := range []struct{ name, state, duration, upload, uploadErr, next string }{
		{"off", stateDisabled, "1m0s", "-", "", "-"},
		// A manual run leaves the current slot's scheduled run due, at its
		// start (no spread).
		{"upload", stateFailed, "1m0s", "failed", "403 Forbidden", formatTime(now.Truncate(fleetInterval))},
		{"going", stateRunning, "running 1h0m0s", "-", "", ""},
		{"stopped", stateCancelled, "2m0s", "-", "", ""},
		{"fresh", stateNever, "-", "-", "", ""},
	} {
		r := got[tc.name]
		if r.State != tc.state || r.Duration != tc.duration || r.Upload != tc.upload || r.UploadErr != tc.uploadErr || (tc.next != "" && r.Next != tc.next) {
			t.Errorf("%s: state %q, duration %q, upload %q %q, next %q; want %+v", tc.name, r.State, r.Duration, r.Upload, r.UploadErr, r.Next, tc)
		}
	}
	if off := got["off"]; off.Enabled || off.Disabled != "enabled: false in the clusters file" {
		t.Errorf("off: enabled %v, reason %q", off.Enabled, off.Disabled)
	}
	if got := fmt.Sprint(v.Counts); got != fmt.Sprintf("[{failed 1 %s} {cancelled 1 %s} {disabled 1 %s} {never 1 %s} {running 1 %s}]",
		"/fleet?sort=name&status=failed", "/fleet?sort=name&status=cancelled", "/fleet?sort=name&status=disabled",
		"/fleet?sort=name&status=never", "/fleet?sort=name&status=running") {
		t.Errorf("counts %s", got)
	}
}
