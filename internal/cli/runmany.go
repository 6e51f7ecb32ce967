package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/fleet"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/scheduler"
)

// clusterRun is one cluster's run of `run --all` or a repeated --cluster.
type clusterRun struct {
	cluster string
	runs    *run.Store
	id      string
	// After --wait: the run and its records, or why following it ended.
	r       run.Run
	results map[string]run.TaskRecord
	err     error
}

// clusterRunJSON is one element of `run --all --wait --json`'s list.
type clusterRunJSON struct {
	Cluster string                    `json:"cluster"`
	Run     *run.Run                  `json:"run"`
	Tasks   map[string]run.TaskRecord `json:"tasks,omitempty"`
	Error   string                    `json:"error,omitempty"`
}

// runMany starts a run on each of clusters (following a full run already
// in progress unless --force, as for one cluster), prints one line per
// cluster, and with --wait follows them all at once: one summary line per
// cluster (or one JSON list), exit 1 if any failed. A cluster that is
// backing off runs all the same: the backoff holds back scheduled runs only.
func runMany(e *env, o *runOpts, set fleet.Set, clusters []fleet.Cluster, kind run.Kind, tasks []string) error {
	for _, c := range clusters {
		if !c.Enabled {
			return &exitError{code: 1, err: fmt.Errorf("cluster %s is disabled: %s", c.Name, c.DisabledReason)}
		}
	}
	l := newLogger(e, e.cfg).Level(zerolog.WarnLevel)
	rt, err := openRuntime(e.cfg, "run")
	if err != nil {
		return err
	}
	defer rt.Close()
	ctx, stop := signalContext()
	defer stop()
	out := e.stdout
	if o.asJSON {
		out = e.stderr
	}
	var crs []*clusterRun
	for _, c := range clusters {
		cfg, err := clusterConfig(e.cfg, set, c)
		if err != nil {
			return err
		}
		cr := &clusterRun{cluster: c.Name, runs: newRuns(rt.rdb, cfg)}
		s := &scheduler.Scheduler{Config: cfg, Runs: cr.runs, Registry: telemetry.Default(), Enqueuer: rt.client, Logger: l}
		id, followed, err := startManual(ctx, s, kind, tasks, o.force)
		if err != nil {
			return fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		if followed != nil {
			fmt.Fprintf(e.stderr, "cluster %s: a full run is already in progress (%s, %s): following it (--force starts one)\n", c.Name, followed.ID, followed.Trigger)
		}
		cr.id = id
		fmt.Fprintf(out, "%s %s\n", c.Name, cr.id)
		crs = append(crs, cr)
	}
	if !o.wait {
		return nil
	}
	waitTimeout := o.waitTimeout
	if waitTimeout == 0 {
		waitTimeout = e.cfg.RunDeadline + time.Minute
	}
	wctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, cr := range crs {
		wg.Go(func() {
			// Task by task progress of many runs at once would be noise:
			// each cluster gets its summary line.
			w := &waiter{runs: cr.runs, insp: rt.insp, out: io.Discard, redisAddr: e.cfg.RedisAddr, redisDB: e.cfg.RedisDB, poll: o.poll}
			cr.r, cr.results, cr.err = w.wait(wctx, cr.id)
			if errors.Is(cr.err, context.DeadlineExceeded) {
				cr.err = fmt.Errorf("gave up waiting after %s (--timeout): %s", waitTimeout, w.status)
			}
		})
	}
	wg.Wait()
	var failed []string
	var docs []clusterRunJSON
	for _, cr := range crs {
		line, ok := clusterRunLine(cr)
		if !ok {
			failed = append(failed, cr.cluster)
		}
		if o.asJSON {
			d := clusterRunJSON{Cluster: cr.cluster, Tasks: cr.results}
			if cr.err != nil {
				d.Error = cr.err.Error()
			} else {
				d.Run = &cr.r
			}
			docs = append(docs, d)
			continue
		}
		fmt.Fprintln(e.stdout, line)
	}
	if o.asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(docs); err != nil {
			return err
		}
	}
	if len(failed) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d clusters failed: %s", len(failed), len(crs), strings.Join(failed, ", "))}
	}
	return nil
}

// clusterRunLine is one cluster's summary line and whether its run
// succeeded (every task ok, not cancelled, upload not failed).
func clusterRunLine(cr *clusterRun) (string, bool) {
	if cr.err != nil {
		return fmt.Sprintf("cluster %s: run %s: %s", cr.cluster, cr.id, oneLine(cr.err)), false
	}
	r := cr.r
	ok := 0
	for _, name := range r.Tasks {
		if cr.results[name].Status == run.TaskOK {
			ok++
		}
	}
	line := fmt.Sprintf("cluster %s: run %s (%s): %s, %d/%d tasks ok, upload %s", cr.cluster, r.ID, r.Kind, r.Status, ok, len(r.Tasks), uploadLine(r.Upload))
	good := r.Status != run.StatusCancelled && ok == len(r.Tasks) && r.Upload.State != run.UploadFailed
	return line, good
}
