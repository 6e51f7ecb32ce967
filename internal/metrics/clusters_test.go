package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/fleet"
	"github.com/apmtel/apmtel/internal/fleetstatus"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/runtest"
	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/internal/uploader"
	"github.com/apmtel/apmtel/jobs"
)

const clusterPrefix = "mc"

// fleetOf parses a clusters file naming names.
func fleetOf(t *testing.T, names ...string) fleet.Set {
	t.Helper()
	var b strings.Builder
	b.WriteString("clusters:\n")
	for i, n := range names {
		fmt.Fprintf(&b, "  - name: %s\n    urls: [\"http://127.0.0.1:%d\"]\n", n, 9200+i)
	}
	set, err := fleet.Parse("clusters.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// identity is a cluster's own source identity: name, uuid and version of
// its own, so a leak into another cluster's series can be seen.
func identity(i int, name string) uploader.Source {
	return uploader.Source{ClusterUUID: fmt.Sprintf("uuid-%s-%04d", name, i), ClusterName: "es-" + name, Version: fmt.Sprintf("8.%d.%d", 10+i, i)}
}

// clusterSeries is every sample of the apmtel_cluster_* families that
// carries a cluster label, by cluster.
func clusterSeries(fams map[string]*dto.MetricFamily) map[string][]map[string]string {
	out := map[string][]map[string]string{}
	for name, f := range fams {
		for _, m := range f.Metric {
			labels := map[string]string{"__name__": name}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			if c, ok := labels["cluster"]; ok {
				out[c] = append(out[c], labels)
			}
		}
	}
	return out
}

// Three clusters, each with runs of its own identity in its own key
// space: each cluster's series carry its own values, and no label of one
// cluster's series names another cluster, its uuid or its version.
func TestClusterMetricsIsolation(t *testing.T) {
	t.Parallel()
	rdb, _ := testenv.RedisDB(t)
	ctx := context.Background()
	names := []string{"alpha", "beta", "gamma"}
	set := fleetOf(t, names...)
	base := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	st := func(name string) *run.Store {
		return run.NewStore(rdb, keys.NewFor(clusterPrefix, name), time.Hour, 50)
	}
	stamp := func(name, id string, i int) {
		b, _ := json.Marshal(identity(i, name))
		if err := rdb.HSet(ctx, keys.NewFor(clusterPrefix, name).Run(id), "source_info", string(b)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	seed := func(name string, i int, spec runtest.Spec) run.Run {
		t.Helper()
		r, err := runtest.Seed(ctx, st(name), spec)
		if err != nil {
			t.Fatal(err)
		}
		stamp(name, spec.ID, i)
		return r
	}
	// alpha: one ok run. beta: an ok run, then a failed one. gamma: a
	// cancelled run, then one still open.
	alphaOK := seed("alpha", 0, runtest.Spec{ID: "sched-20261204T000000Z", Trigger: "schedule", Tasks: tasks, Start: base, Upload: run.UploadUploaded,
		Took: func(i, _ int) time.Duration { return time.Duration(100+i) * time.Millisecond }})
	betaOK := seed("beta", 1, runtest.Spec{ID: "sched-20261203T120000Z", Trigger: "schedule", Tasks: tasks, Start: base.Add(-12 * time.Hour)})
	betaFailed := seed("beta", 1, runtest.Spec{ID: "sched-20261204T000000Z", Trigger: "schedule", Tasks: tasks, Start: base.Add(time.Minute),
		Fail: map[string]string{"services": "timeout"}, Took: func(i, _ int) time.Duration { return time.Duration(300+i) * time.Millisecond }})
	seed("gamma", 2, runtest.Spec{ID: "manual-1", Tasks: tasks, Start: base.Add(2 * time.Minute), Cancel: true})
	if ok, err := st("gamma").Create(ctx, run.Run{ID: "manual-2", Trigger: "manual", Kind: run.KindFull, CreatedAt: base.Add(3 * time.Minute),
		Deadline: base.Add(time.Hour), Tasks: tasks}); err != nil || !ok {
		t.Fatalf("create: %v %v", ok, err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(NewClusters(fleet.Static(set), fleetstatus.Reader{Redis: rdb, Prefix: clusterPrefix, Depth: 50}, 1000))
	fams := scrape(t, Handler(reg))

	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"apmtel_cluster_last_success_timestamp_seconds", map[string]string{"cluster": "alpha"}, unix(alphaOK.SealedAt)},
		{"apmtel_cluster_last_success_timestamp_seconds", map[string]string{"cluster": "beta"}, unix(betaOK.SealedAt)},
		{"apmtel_cluster_last_run_duration_seconds", map[string]string{"cluster": "alpha"}, alphaOK.SealedAt.Sub(alphaOK.CreatedAt).Seconds()},
		{"apmtel_cluster_last_run_duration_seconds", map[string]string{"cluster": "beta"}, betaFailed.SealedAt.Sub(betaFailed.CreatedAt).Seconds()},
		{"apmtel_cluster_last_run_status", map[string]string{"cluster": "alpha", "status": "ok"}, 1},
		{"apmtel_cluster_last_run_status", map[string]string{"cluster": "alpha", "status": "failed"}, 0},
		{"apmtel_cluster_last_run_status", map[string]string{"cluster": "beta", "status": "failed"}, 1},
		{"apmtel_cluster_last_run_status", map[string]string{"cluster": "beta", "status": "ok"}, 0},
		{"apmtel_cluster_last_run_status", map[string]string{"cluster": "gamma", "status": "running"}, 1},
		{"apmtel_cluster_last_run_status", map[string]string{"cluster": "gamma", "status": "cancelled"}, 0},
		{"apmtel_cluster_metrics_overflow", nil, 0},
		{"apmtel_cluster_scrape_ok", nil, 1},
	}
	for _, c := range checks {
		got, ok := value(t, fams, c.name, c.labels)
		if !ok || math.Abs(got-c.want) > 1e-3 {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	// gamma has no success and its newest run has not ended: neither series.
	for _, name := range []string{"apmtel_cluster_last_success_timestamp_seconds", "apmtel_cluster_last_run_duration_seconds"} {
		if v, ok := value(t, fams, name, map[string]string{"cluster": "gamma"}); ok {
			t.Errorf("%s{cluster=gamma} = %v, want absent", name, v)
		}
	}

	series := clusterSeries(fams)
	for i, name := range names {
		// Status: one series per status; success and duration where known.
		if n := len(series[name]); n < len(ClusterStatuses) || n > len(ClusterStatuses)+2 {
			t.Errorf("cluster %s has %d series: %v", name, n, series[name])
		}
		for j, other := range names {
			if j == i {
				continue
			}
			id := identity(j, other)
			for _, s := range series[name] {
				for k, v := range s {
					for _, leak := range []string{other, id.ClusterUUID, id.ClusterName, id.Version} {
						if strings.Contains(v, leak) {
							t.Errorf("series %v of cluster %s: label %s=%q names %s's %q", s, name, k, v, other, leak)
						}
					}
				}
			}
		}
	}
}

// Limit 2, three clusters: the first two by name get series, the third is
// counted in the overflow, and the overflow is exported even when Redis
// cannot be read.
func TestClusterMetricsOverflow(t *testing.T) {
	t.Parallel()
	rdb, _ := testenv.RedisDB(t)
	ctx := context.Background()
	set := fleetOf(t, "c-one", "c-three", "c-two") // name order: c-one, c-three, c-two
	for i, name := range set.Names() {
		if _, err := runtest.Seed(ctx, run.NewStore(rdb, keys.NewFor(clusterPrefix, name), time.Hour, 50),
			runtest.Spec{ID: fmt.Sprintf("manual-%d", i), Tasks: tasks, Start: time.Now().Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewClusters(fleet.Static(set), fleetstatus.Reader{Redis: rdb, Prefix: clusterPrefix, Depth: 50}, 2))
	fams := scrape(t, Handler(reg))
	series := clusterSeries(fams)
	if len(series) != 2 || series["c-one"] == nil || series["c-three"] == nil {
		t.Errorf("series for clusters %v, want c-one and c-three only", keysOf(series))
	}
	if v, ok := value(t, fams, "apmtel_cluster_metrics_overflow", nil); !ok || v != 1 {
		t.Errorf("overflow = %v (present %v), want 1", v, ok)
	}

	rdb.Close()
	fams = scrape(t, Handler(reg))
	if v, ok := value(t, fams, "apmtel_cluster_metrics_overflow", nil); !ok || v != 1 {
		t.Errorf("Redis down: overflow = %v (present %v), want 1", v, ok)
	}
	if v, ok := value(t, fams, "apmtel_cluster_scrape_ok", nil); !ok || v != 0 {
		t.Errorf("Redis down: scrape_ok = %v (present %v), want 0", v, ok)
	}
	if s := clusterSeries(fams); len(s) != 0 {
		t.Errorf("Redis down: series of %v", keysOf(s))
	}
}

// Single-cluster mode: the one cluster of the APMTEL_SOURCE_* settings, in
// the default key space, gives one series of each gauge labelled with its
// name, and the monitor's existing metrics keep their labels (no cluster).
func TestClusterMetricsSingleCluster(t *testing.T) {
	t.Parallel()
	rdb, db := testenv.RedisDB(t)
	ctx := context.Background()
	st := run.NewStore(rdb, keys.New(""), time.Hour, 50)
	r, err := runtest.Seed(ctx, st, runtest.Spec{ID: "manual-1", Tasks: tasks, Start: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	set, err := fleet.FromSource(keys.DefaultSource, config.Cluster{URLs: []string{"http://127.0.0.1:9200"}})
	if err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspector(asynq.RedisClientOpt{Addr: testenv.RedisAddr(t), DB: db})
	defer insp.Close()
	reg := Monitor(insp, rdb, st, 100, jobs.QueueCollect, jobs.QueueControl)
	reg.MustRegister(NewClusters(fleet.Static(set), fleetstatus.Reader{Redis: rdb, Prefix: keys.DefaultPrefix, Depth: 50}, 1000))
	fams := scrape(t, Handler(reg))
	for _, name := range []string{"apmtel_cluster_last_success_timestamp_seconds", "apmtel_cluster_last_run_duration_seconds"} {
		f := fams[name]
		if len(f.GetMetric()) != 1 {
			t.Fatalf("%s: %d series, want 1", name, len(f.GetMetric()))
		}
		if l := f.Metric[0].Label; len(l) != 1 || l[0].GetName() != "cluster" || l[0].GetValue() != keys.DefaultSource {
			t.Errorf("%s labels %v, want cluster=%q only", name, l, keys.DefaultSource)
		}
	}
	if v, _ := value(t, fams, "apmtel_cluster_last_success_timestamp_seconds", nil); math.Abs(v-unix(r.SealedAt)) > 1e-3 {
		t.Errorf("last success %v, want %v", v, unix(r.SealedAt))
	}
	if n := len(fams["apmtel_cluster_last_run_status"].GetMetric()); n != len(ClusterStatuses) {
		t.Errorf("status: %d series, want %d", n, len(ClusterStatuses))
	}
	for name, f := range fams {
		if strings.HasPrefix(name, "apmtel_cluster_") {
			continue
		}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == "cluster" {
					t.Errorf("%s has a cluster label", name)
				}
			}
		}
	}
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
