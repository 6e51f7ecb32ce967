package console

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"

	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/clock"
	"github.com/apmtel/apmtel/internal/fleet"
	"github.com/apmtel/apmtel/internal/fleetstatus"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/uploader"
	"github.com/apmtel/apmtel/jobs"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure the console.
type Options struct {
	Runs *run.Store
	// MonitorPath is where Asynqmon is mounted ("/monitoring"); task links
	// point at its task pages.
	MonitorPath string
	// Sink is where uploads go, to name a document's target; nil: unknown.
	Sink uploader.Sink
	// Limit is how many of the newest runs /runs and /history read (the
	// history limit is a good value); 100 when 0.
	Limit  int
	Logger zerolog.Logger
	// Now is the clock (the wall clock when nil).
	Now clock.Clock
	// Fleet is the cluster set (fleet.Static of fleet.FromSource in a
	// single-cluster deployment); nil: no fleet page. See fleet.go.
	Fleet fleet.Source
	// Clusters reads each cluster's runs (its Redis must be set with a
	// Fleet; its Prefix defaults to Runs' prefix); Schedule gives each
	// cluster's next due time on the fleet page.
	Clusters fleetstatus.Reader
	Schedule fleetstatus.Schedule
}

// Paths the console serves.
const (
	RunsPath    = "/runs"
	HistoryPath = "/history"
	staticPath  = "/console/static/"
)

// RunURL is the path of run id's page.
func RunURL(id string) string { return RunsPath + "/" + url.PathEscape(id) }

type console struct {
	o    Options
	tmpl map[string]*template.Template
	// cluster is the cluster whose runs this console reads (?cluster=),
	// "" for Options.Runs.
	cluster string
}

// Register mounts the console's pages on mux: /runs, /runs/{id}, /history,
// /fleet (with a Fleet), its stylesheet, and "/" itself, which goes to /runs.
func Register(mux *http.ServeMux, o Options) error {
	c, err := newConsole(o)
	if err != nil {
		return err
	}
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET "+staticPath, http.StripPrefix(staticPath, http.FileServerFS(static)))
	mux.HandleFunc("GET "+RunsPath, c.runs)
	mux.HandleFunc("GET "+RunsPath+"/{id}", c.run)
	mux.HandleFunc("GET "+HistoryPath, c.history)
	if c.o.Fleet != nil {
		mux.HandleFunc("GET "+FleetPath, c.fleet)
	}
	mux.Handle("GET /{$}", http.RedirectHandler(RunsPath, http.StatusFound))
	return nil
}

func newConsole(o Options) (*console, error) {
	if o.Runs == nil {
		return nil, errors.New("console: no run store")
	}
	if o.Limit <= 0 {
		o.Limit = 100
	}
	if err := checkFleet(&o); err != nil {
		return nil, err
	}
	c := &console{o: o, tmpl: map[string]*template.Template{}}
	for _, page := range []string{"runs", "run", "history", "fleet"} {
		t, err := template.New("layout.html").Funcs(funcs).Funcs(template.FuncMap{"runurl": c.runURL}).ParseFS(templateFS, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", page, err)
		}
		c.tmpl[page] = t
	}
	return c, nil
}

// page is what every template gets.
type page struct {
	Title   string
	Nav     string
	Monitor string
	Refresh int
	Data    any
	// Fleet shows the fleet page in the menu; Cluster names the cluster
	// whose runs the page shows.
	Fleet   bool
	Cluster string
}

func (c *console) render(w http.ResponseWriter, name string, p page) {
	p.Monitor = c.o.MonitorPath + "/"
	p.Fleet, p.Cluster = c.o.Fleet != nil, c.cluster
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := c.tmpl[name].Execute(w, p); err != nil {
		c.o.Logger.Error().Err(err).Str("page", name).Msg("console page failed to render")
	}
}

func (c *console) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	if code >= 500 {
		c.o.Logger.Error().Err(err).Str("path", r.URL.Path).Msg("console")
	}
	http.Error(w, err.Error(), code)
}

func intParam(r *http.Request, name string, def, lo, hi int) int {
	n, err := strconv.Atoi(r.URL.Query().Get(name))
	if err != nil {
		return def
	}
	return min(max(n, lo), hi)
}

func (c *console) asynqmonTask(source, runID, task string) string {
	return c.o.MonitorPath + "/queues/" + url.PathEscape(jobs.QueueCollect) + "/tasks/" + url.PathEscape(jobs.CollectID(source, runID, task))
}

func (c *console) runs(w http.ResponseWriter, r *http.Request) {
	c, ok := c.forCluster(w, r)
	if !ok {
		return
	}
	status := r.URL.Query().Get("status")
	if status != "" && !validFilter(status) {
		c.fail(w, r, http.StatusBadRequest, fmt.Errorf("unknown status %q: want one of %v", status, filters))
		return
	}
	runs, err := c.o.Runs.List(r.Context(), c.o.Limit)
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	v, err := c.runList(r.Context(), runs, status)
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	v.Cluster = c.cluster
	refresh := 0
	for _, row := range v.Rows {
		if !row.Run.Status.Terminal() {
			refresh = 5
		}
	}
	c.render(w, "runs", page{Title: "Runs", Nav: "runs", Refresh: refresh, Data: v})
}

func (c *console) run(w http.ResponseWriter, r *http.Request) {
	c, ok := c.forCluster(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	rn, err := c.o.Runs.Get(r.Context(), id)
	if errors.Is(err, run.ErrNotFound) {
		c.fail(w, r, http.StatusNotFound, fmt.Errorf("run %s is not in the history (trimmed, expired or never created)", id))
		return
	}
	if err != nil && rn.ID == "" {
		c.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	v, verr := c.runView(r.Context(), rn)
	if verr != nil {
		c.fail(w, r, http.StatusServiceUnavailable, verr)
		return
	}
	if err != nil {
		v.Problems = append(v.Problems, err.Error())
	}
	refresh := 0
	if !rn.Status.Terminal() || (rn.Status == run.StatusSealed && !rn.Upload.State.Ended()) {
		refresh = 3
	}
	c.render(w, "run", page{Title: "Run " + rn.ID, Nav: "runs", Refresh: refresh, Data: v})
}

func (c *console) history(w http.ResponseWriter, r *http.Request) {
	c, ok := c.forCluster(w, r)
	if !ok {
		return
	}
	n := intParam(r, "n", 30, 2, c.o.Limit)
	// Full runs by default: one-task partial runs would drag the wall-time
	// line to zero between them. kind=all shows every kind.
	kind := r.URL.Query().Get("kind")
	switch {
	case kind == "":
		kind = string(run.KindFull)
	case kind == "all":
		kind = ""
	case !run.Kind(kind).Valid():
		c.fail(w, r, http.StatusBadRequest, fmt.Errorf("unknown kind %q: want all, %s, %s or %s", kind, run.KindFull, run.KindPartial, run.KindDryRun))
		return
	}
	runs, err := c.o.Runs.List(r.Context(), c.o.Limit)
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err)
		return
	}
	v := historyView(runs, n, kind)
	v.Cluster = c.cluster
	c.render(w, "history", page{Title: "History", Nav: "history", Data: v})
}
