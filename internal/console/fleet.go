package console

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apmtel/apmtel/internal/backoff"
	"github.com/apmtel/apmtel/internal/fleetstatus"
	"github.com/apmtel/apmtel/internal/run"
)

// FleetPath is the fleet page: one row per configured cluster.
const FleetPath = "/fleet"

// ClusterRunsURL is the runs page of the named cluster.
func ClusterRunsURL(name string) string { return RunsPath + "?cluster=" + url.QueryEscape(name) }

// A cluster's state on the fleet page: one word per row, for the filter
// (?status=), the sort and the summary. Listed from the most to the least
// urgent, which is the order of the default sort, so that at 1,000 rows
// the clusters that need the operator come first.
const (
	stateBackingOff = "backing-off"
	stateFailed     = "failed" // last run with failed tasks, or its upload failed
	stateCancelled  = "cancelled"
	stateDisabled   = "disabled"
	stateNever      = "never" // enabled, no run in the history
	stateRunning    = "running"
	stateOK         = "ok"
)

var fleetStates = []string{stateBackingOff, stateFailed, stateCancelled, stateDisabled, stateNever, stateRunning, stateOK}

// fleetSorts are the values of ?sort= ("-" before one reverses it).
var fleetSorts = []string{"status", "name", "run", "success", "duration", "failed", "next"}

const (
	fleetPageDefault = 100
	fleetPageMax     = 1000
)

type fleetRow struct {
	Name    string
	RunsURL string
	State   string
	Enabled bool
	// Disabled is why the cluster is not enabled.
	Disabled string
	// Run is the last run's id, URL and status ("" when none).
	Run, RunURL, RunStatus string
	RunAt                  time.Time
	// Success is the age of the last success ("never" when none).
	Success   string
	SuccessAt *time.Time
	Duration  string
	Failed    []string
	Upload    string
	UploadErr string
	// Backoff is "backing off until T: <last error>" or the failing streak.
	Backoff string
	Next    string
	NextAt  *time.Time

	durationMS int64
}

type fleetHeader struct {
	Label, URL string
	// Arrow marks the column the rows are sorted by.
	Arrow string
}

type fleetCount struct {
	State string
	N     int
	URL   string
}

type fleetView struct {
	Rows    []fleetRow
	Headers map[string]fleetHeader
	Counts  []fleetCount
	Q       string
	Status  string
	Sort    string
	PerPage int
	States  []string
	// Total is the number of clusters configured; Matched those that pass
	// the filter; First..Last the rows shown (1-based).
	Total, Matched, First, Last int
	Prev, Next                  string
}

type fleetQuery struct {
	q, status, sort string
	page, per       int
}

func (fq fleetQuery) url(change func(*fleetQuery)) string {
	n := fq
	change(&n)
	v := url.Values{}
	if n.q != "" {
		v.Set("q", n.q)
	}
	if n.status != "" {
		v.Set("status", n.status)
	}
	if n.sort != "status" {
		v.Set("sort", n.sort)
	}
	if n.per != fleetPageDefault {
		v.Set("n", strconv.Itoa(n.per))
	}
	if n.page > 1 {
		v.Set("page", strconv.Itoa(n.page))
	}
	if len(v) == 0 {
		return FleetPath
	}
	return FleetPath + "?" + v.Encode()
}

func parseFleetQuery(r *http.Request) (fleetQuery, error) {
	q := r.URL.Query()
	fq := fleetQuery{q: strings.TrimSpace(q.Get("q")), status: q.Get("status"), sort: q.Get("sort"),
		page: intParam(r, "page", 1, 1, 1<<20), per: intParam(r, "n", fleetPageDefault, 10, fleetPageMax)}
	if fq.status != "" && !slices.Contains(fleetStates, fq.status) {
		return fq, fmt.Errorf("unknown status %q: want one of %v", fq.status, fleetStates)
	}
	if fq.sort == "" {
		fq.sort = "status"
	}
	if !slices.Contains(fleetSorts, strings.TrimPrefix(fq.sort, "-")) {
		return fq, fmt.Errorf("unknown sort %q: want one of %v, each reversed by a leading -", fq.sort, fleetSorts)
	}
	return fq, nil
}

func (c *console) fleet(w http.ResponseWriter, r *http.Request) {
	fq, err := parseFleetQuery(r)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err)
		return
	}
	set := c.o.Fleet.Current()
	states, err := c.o.Clusters.Read(r.Context(), set.Names())
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	now := c.o.Now.Now()
	rows := fleetstatus.Rows(set, states, c.o.Schedule, now)
	v := c.fleetView(rows, states, now, fq)
	refresh := 0
	if slices.ContainsFunc(v.Rows, func(fr fleetRow) bool { return fr.State == stateRunning }) {
		refresh = 30
	}
	c.render(w, "fleet", page{Title: "Fleet", Nav: "fleet", Refresh: refresh, Data: v})
}

// fleetView turns the rows into the page: filtered, counted, sorted and
// cut to one page. rows come from fleetstatus.Rows, so the page and
// `apmtel clusters` agree on every value.
func (c *console) fleetView(rows []fleetstatus.Row, states map[string]fleetstatus.ClusterState, now time.Time, fq fleetQuery) fleetView {
	v := fleetView{Headers: map[string]fleetHeader{}, Q: fq.q, Status: fq.status, Sort: fq.sort, PerPage: fq.per, States: fleetStates, Total: len(rows)}
	counts := map[string]int{}
	needle := strings.ToLower(fq.q)
	var out []fleetRow
	for _, row := range rows {
		fr := c.fleetRow(row, states[row.Name], now)
		if needle != "" && !strings.Contains(strings.ToLower(fr.Name), needle) {
			continue
		}
		counts[fr.State]++
		if fq.status != "" && fr.State != fq.status {
			continue
		}
		out = append(out, fr)
	}
	for _, s := range fleetStates {
		if counts[s] > 0 {
			v.Counts = append(v.Counts, fleetCount{State: s, N: counts[s], URL: fq.url(func(n *fleetQuery) { n.status, n.page = s, 1 })})
		}
	}
	sortFleet(out, fq.sort)
	v.Matched = len(out)
	pages := max((len(out)+fq.per-1)/fq.per, 1)
	pg := min(fq.page, pages)
	lo, hi := (pg-1)*fq.per, min(pg*fq.per, len(out))
	v.Rows = out[lo:hi]
	v.First, v.Last = lo+1, hi
	if pg > 1 {
		v.Prev = fq.url(func(n *fleetQuery) { n.page = pg - 1 })
	}
	if pg < pages {
		v.Next = fq.url(func(n *fleetQuery) { n.page = pg + 1 })
	}
	for _, h := range []struct{ key, label string }{{"name", "Cluster"}, {"status", "Last run"}, {"run", "Started"}, {"success", "Last success"},
		{"duration", "Duration"}, {"failed", "Failed tasks"}, {"next", "Next due"}} {
		fh := fleetHeader{Label: h.label}
		next := h.key
		switch fq.sort {
		case h.key:
			fh.Arrow, next = "▲", "-"+h.key
		case "-" + h.key:
			fh.Arrow = "▼"
		}
		fh.URL = fq.url(func(n *fleetQuery) { n.sort, n.page = next, 1 })
		v.Headers[h.key] = fh
	}
	return v
}

func (c *console) fleetRow(row fleetstatus.Row, st fleetstatus.ClusterState, now time.Time) fleetRow {
	fr := fleetRow{Name: row.Name, RunsURL: ClusterRunsURL(row.Name), Enabled: row.Enabled, Disabled: row.DisabledReason,
		Success: "never", SuccessAt: row.LastSuccessAt, Duration: "-", Upload: "-", Next: "-", NextAt: row.NextDueAt}
	if row.Health != backoff.StatusHealthy {
		fr.Backoff = st.Backoff.Text(now)
	}
	if row.LastSuccessAt != nil {
		fr.Success = ago(now.Sub(*row.LastSuccessAt))
	}
	if row.NextDueAt != nil {
		fr.Next = formatTime(*row.NextDueAt)
	}
	if l := row.LastRun; l != nil {
		fr.Run, fr.RunURL, fr.RunAt = l.ID, c.runURL(run.Run{ID: l.ID, Source: row.Name}), l.CreatedAt
		fr.RunStatus = string(l.Status)
		if l.Outcome != "" && l.Outcome != run.OutcomeCancelled {
			fr.RunStatus = string(l.Outcome)
		}
		fr.Failed, fr.Upload, fr.durationMS = l.Failed, l.Upload, l.DurationMS
		if l.Status.Terminal() {
			fr.Duration = formatDur(time.Duration(l.DurationMS) * time.Millisecond)
		} else if l.Status == run.StatusOpen || l.Status == run.StatusClosed {
			fr.Duration = "running " + formatDur(now.Sub(l.CreatedAt))
		}
		if len(st.Runs) > 0 && st.Runs[0].Upload.State == run.UploadFailed {
			fr.UploadErr = st.Runs[0].Upload.Error
		}
	}
	fr.State = fleetState(row, fr)
	return fr
}

func fleetState(row fleetstatus.Row, fr fleetRow) string {
	switch {
	case !row.Enabled:
		return stateDisabled
	case row.Health == backoff.StatusBackingOff:
		return stateBackingOff
	case row.LastRun == nil:
		return stateNever
	case row.LastRun.Outcome == run.OutcomeFailed, fr.UploadErr != "":
		return stateFailed
	case row.LastRun.Outcome == run.OutcomeCancelled:
		return stateCancelled
	case row.LastRun.Outcome == run.OutcomeOK:
		return stateOK
	}
	return stateRunning
}

// ago says how long ago something was, to the unit a reader compares.
func ago(d time.Duration) string {
	d = max(d, 0) // clocks of workers and monitor differ a little
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh ago", int(d.Hours())/24, int(d.Hours())%24)
}

// sortFleet sorts rows by key ("-key": reversed); ties go by name, and a
// missing value (no success, no run, not due) sorts as the least one.
func sortFleet(rows []fleetRow, key string) {
	desc := strings.HasPrefix(key, "-")
	key = strings.TrimPrefix(key, "-")
	rank := func(s string) int { return slices.Index(fleetStates, s) }
	timeOf := func(t *time.Time) int64 {
		if t == nil {
			return -1 << 62
		}
		return t.UnixMilli()
	}
	slices.SortStableFunc(rows, func(a, b fleetRow) int {
		var n int
		switch key {
		case "status":
			n = cmp.Compare(rank(a.State), rank(b.State))
		case "run":
			n = cmp.Compare(a.RunAt.UnixMilli(), b.RunAt.UnixMilli())
		case "success":
			n = cmp.Compare(timeOf(a.SuccessAt), timeOf(b.SuccessAt))
		case "duration":
			n = cmp.Compare(a.durationMS, b.durationMS)
		case "failed":
			n = cmp.Compare(len(a.Failed), len(b.Failed))
		case "next":
			n = cmp.Compare(timeOf(a.NextAt), timeOf(b.NextAt))
		}
		if desc {
			n = -n
		}
		if n == 0 {
			n = cmp.Compare(a.Name, b.Name)
			if desc && key == "name" {
				n = -n
			}
		}
		return n
	})
}

// checkFleet completes o's fleet settings: a fleet page needs Redis to read
// the clusters' runs from, and the clusters' keys share Runs' prefix.
func checkFleet(o *Options) error {
	if o.Fleet == nil {
		return nil
	}
	if o.Clusters.Redis == nil {
		return errors.New("console: a fleet needs Clusters.Redis to read its clusters' runs")
	}
	if o.Clusters.Prefix == "" {
		o.Clusters.Prefix = o.Runs.Keys().Prefix
	}
	if o.Clusters.Depth <= 0 {
		o.Clusters.Depth = o.Limit
	}
	return nil
}

// forCluster returns the console that reads the runs of the cluster named
// by ?cluster= — its own key space (keys.Space of its name) — or c itself
// without one. A name that is not in the cluster set is a 404: its key
// space may hold the runs of a removed cluster, but the page would then
// claim a cluster the deployment does not have.
func (c *console) forCluster(w http.ResponseWriter, r *http.Request) (*console, bool) {
	name := r.URL.Query().Get("cluster")
	if name == "" || (c.o.Fleet == nil && name == c.o.Runs.Keys().Source) {
		return c, true
	}
	known := name == c.o.Runs.Keys().Source
	if c.o.Fleet != nil {
		_, known = c.o.Fleet.Current().Get(name)
	}
	if !known {
		c.fail(w, r, http.StatusNotFound, fmt.Errorf("cluster %q is not in the cluster set", name))
		return nil, false
	}
	cc := *c
	cc.cluster = name
	if c.o.Fleet != nil {
		cc.o.Runs = c.o.Clusters.Store(name)
	}
	return &cc, true
}

// runURL is the page of r, naming its cluster unless it is the one of
// Options.Runs (so a single-cluster console's links stay as they were).
func (c *console) runURL(r run.Run) string {
	if r.Source == "" || r.Source == c.o.Runs.Keys().Source {
		return RunURL(r.ID)
	}
	return RunURL(r.ID) + "?cluster=" + url.QueryEscape(r.Source)
}
