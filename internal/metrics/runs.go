package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/apmtel/apmtel/internal/run"
)

// Buckets in seconds: tasks take from milliseconds (a small cluster) to
// minutes (a composite aggregation over a large one); runs add the queue
// and the seal, and are bounded by APMTEL_RUN_DEADLINE.
var (
	TaskBuckets = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	RunBuckets  = []float64{.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}
)

// Runs turns the run history in Redis into counters and histograms (see the
// package doc for why each run is counted once, into in-process metrics).
// One Runs serves one monitor for its whole life.
type Runs struct {
	store *run.Store
	// window is how many of the newest runs are read per scrape; at least
	// the history limit, so that no run leaves the history unseen.
	window  int
	timeout time.Duration

	mu sync.Mutex
	// counted holds the terminal runs whose attempts and durations were
	// observed. Runs and uploads are not counted here but read from the
	// counters the run store keeps in Redis (run.Counters): a run that
	// ended and left the history between two scrapes is counted too.
	counted map[string]bool
	// counters are the last ones read (kept when Redis cannot be read).
	counters run.Counters
	// lastOK and lastDelivered only move forward: the newest such run may
	// have been trimmed from the history since.
	lastOK, lastDelivered time.Time
	readOK                bool

	attempts                *prometheus.CounterVec
	taskDur, runDur         *prometheus.HistogramVec
	runsDesc, uploadsDesc   *prometheus.Desc
	lastOKDesc, lastDelDesc *prometheus.Desc
	readDesc                *prometheus.Desc
}

// NewRuns reads st's newest window runs at each scrape.
func NewRuns(st *run.Store, window int) *Runs {
	return &Runs{store: st, window: max(window, 1), timeout: 10 * time.Second,
		counted: map[string]bool{},
		runsDesc: prometheus.NewDesc(namespace+"_runs_total",
			"Runs that ended, by trigger, kind and status (ok: every task succeeded; failed: sealed with failed tasks; cancelled).",
			[]string{"trigger", "kind", "status"}, nil),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "task_attempts_total",
			Help: "Task attempts of ended runs, by task and the attempt's status (retrying: it failed and another attempt followed)."},
			[]string{"task", "status"}),
		uploadsDesc: prometheus.NewDesc(namespace+"_uploads_total",
			"Run uploads that ended, by outcome (uploaded, written, skipped, failed).",
			[]string{"outcome"}, nil),
		taskDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "task_duration_seconds",
			Help: "The took of each task's final attempt in ended runs (the value Kibana reports as tasks.<task>.took.ms).", Buckets: TaskBuckets},
			[]string{"task"}),
		runDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "run_duration_seconds",
			Help: "Wall time of sealed runs, from creation to seal, by kind.", Buckets: RunBuckets},
			[]string{"kind"}),
		lastOKDesc: prometheus.NewDesc("apmtel_last_successful_run_timestamp_seconds",
			"Unix time at which the newest full run whose every task succeeded was sealed.", nil, nil),
		lastDelDesc: prometheus.NewDesc("apmtel_last_delivered_upload_timestamp_seconds",
			"Unix time at which the newest delivered upload (indexed or written) ended.", nil, nil),
		readDesc: prometheus.NewDesc("apmtel_runs_scrape_ok",
			"1 when the run history could be read from Redis at this scrape, else 0 (the run metrics then keep their last values).", nil, nil),
	}
}

func (c *Runs) vecs() []prometheus.Collector {
	return []prometheus.Collector{c.attempts, c.taskDur, c.runDur}
}

// Describe implements prometheus.Collector.
func (c *Runs) Describe(ch chan<- *prometheus.Desc) {
	for _, v := range c.vecs() {
		v.Describe(ch)
	}
	ch <- c.runsDesc
	ch <- c.uploadsDesc
	ch <- c.lastOKDesc
	ch <- c.lastDelDesc
	ch <- c.readDesc
}

// Collect implements prometheus.Collector: it counts the runs that ended
// since the last scrape, then reports.
func (c *Runs) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	c.readOK = c.refresh(ctx) == nil
	for _, v := range c.vecs() {
		v.Collect(ch)
	}
	for k, n := range c.counters.Runs {
		ch <- prometheus.MustNewConstMetric(c.runsDesc, prometheus.CounterValue, float64(n), k.Trigger, string(k.Kind), string(k.Outcome))
	}
	for state, n := range c.counters.Uploads {
		ch <- prometheus.MustNewConstMetric(c.uploadsDesc, prometheus.CounterValue, float64(n), string(state))
	}
	if !c.lastOK.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.lastOKDesc, prometheus.GaugeValue, unix(c.lastOK))
	}
	if !c.lastDelivered.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.lastDelDesc, prometheus.GaugeValue, unix(c.lastDelivered))
	}
	ok := 0.0
	if c.readOK {
		ok = 1
	}
	ch <- prometheus.MustNewConstMetric(c.readDesc, prometheus.GaugeValue, ok)
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// RunStatus is a run's status label: ok, failed or cancelled; "" while the
// run has not ended.
func RunStatus(r run.Run) string { return string(r.Outcome()) }

func (c *Runs) refresh(ctx context.Context) error {
	counters, err := c.store.Counters(ctx)
	if err != nil {
		return err
	}
	c.counters = counters
	runs, err := c.store.List(ctx, c.window)
	if err != nil {
		return err
	}
	present := make(map[string]bool, len(runs))
	for _, r := range runs {
		present[r.ID] = true
		status := RunStatus(r)
		if status == "" {
			continue
		}
		if !c.counted[r.ID] {
			if err := c.countRun(ctx, r); err != nil {
				return err
			}
			c.counted[r.ID] = true
		}
		if r.Status == run.StatusSealed && status == string(run.OutcomeOK) && r.Kind == run.KindFull && r.SealedAt.After(c.lastOK) {
			c.lastOK = r.SealedAt
		}
		if r.Upload.State.Delivered() && r.Upload.At.After(c.lastDelivered) {
			c.lastDelivered = r.Upload.At
		}
	}
	// A run that left the history never comes back: forget it.
	for id := range c.counted {
		if !present[id] {
			delete(c.counted, id)
		}
	}
	return nil
}

// countRun counts one ended run: attempts, task durations and wall time.
func (c *Runs) countRun(ctx context.Context, r run.Run) error {
	attempts, err := c.store.Attempts(ctx, r.ID)
	if err != nil {
		return err
	}
	results, err := c.store.Results(ctx, r.ID)
	if err != nil {
		return err
	}
	for _, a := range attempts {
		c.attempts.WithLabelValues(a.Task, string(a.Status)).Inc()
	}
	for _, task := range r.Tasks {
		rec, ok := results[task]
		// A task that never started (cancelled, or timed out in the queue)
		// has no took to observe.
		if !ok || !rec.Status.Final() || rec.StartedAt.IsZero() {
			continue
		}
		c.taskDur.WithLabelValues(task).Observe(float64(rec.TookMS) / 1000)
	}
	if r.Status == run.StatusSealed && !r.SealedAt.IsZero() {
		c.runDur.WithLabelValues(string(r.Kind)).Observe(r.SealedAt.Sub(r.CreatedAt).Seconds())
	}
	return nil
}
