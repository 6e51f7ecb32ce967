package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/backoff"
	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/runtest"
	"github.com/apmtel/apmtel/internal/testenv"
)

// fleetEnv is a fresh Redis database and a clusters file of alpha and beta
// (enabled, each with its API key file) and gamma (disabled by the file).
func fleetEnv(t *testing.T) map[string]string {
	t.Helper()
	env := redisEnv(t)
	dir := t.TempDir()
	for _, n := range []string{"alpha", "beta"} {
		if err := os.WriteFile(filepath.Join(dir, n+"-key"), []byte("a2V5OnNlY3JldA=="), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "clusters.yml")
	yml := fmt.Sprintf(`clusters:
  - name: alpha
    urls: ["http://127.0.0.1:1"]
    api_key_file: %[1]s/alpha-key
  - name: beta
    urls: ["http://127.0.0.1:2"]
    api_key_file: %[1]s/beta-key
  - name: gamma
    urls: ["http://127.0.0.1:3"]
    enabled: false
`, dir)
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	env["APMTEL_CLUSTERS_FILE"] = file
	env["APMTEL_INTERVAL"] = "12h"
	env["APMTEL_FLEET_SPREAD"] = "0"
	return env
}

// redisOf is a runtime on env's database and the configuration it uses.
func redisOf(t *testing.T, env map[string]string) (*runtime, config.Config) {
	t.Helper()
	cfg := config.Default()
	cfg.RedisAddr = env["APMTEL_REDIS_ADDR"]
	if _, err := fmt.Sscan(env["APMTEL_REDIS_DB"], &cfg.RedisDB); err != nil {
		t.Fatal(err)
	}
	return testRuntime(t, cfg), cfg
}

// storeOf is the run store of cluster name in env's database.
func storeOf(t *testing.T, env map[string]string, name string) *run.Store {
	t.Helper()
	rt, cfg := redisOf(t, env)
	return run.NewStore(rt.rdb, keys.NewFor(cfg.KeyPrefix, name), cfg.HistoryTTL, cfg.HistoryLimit)
}

// backOff records three failed runs of cluster name, as finalize would:
// the cluster is then backing off.
func backOff(t *testing.T, env map[string]string, name, errText string) {
	t.Helper()
	rt, cfg := redisOf(t, env)
	bst := backoff.NewStore(rt.rdb, keys.NewFor(cfg.KeyPrefix, name), backoff.DefaultPolicy(12*time.Hour), 0)
	for i := range 3 {
		if _, err := bst.Failed(context.Background(), fmt.Sprintf("sched-%d", i), time.Now(), errText); err != nil {
			t.Fatal(err)
		}
	}
}

type clusterRowJSON struct {
	Name           string `json:"name"`
	Enabled        bool   `json:"enabled"`
	DisabledReason string `json:"disabled_reason"`
	LastRun        *struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Upload string `json:"upload"`
	} `json:"last_run"`
	LastSuccessAt *time.Time `json:"last_success_at"`
	NextDueAt     *time.Time `json:"next_due_at"`
	BackoffUntil  *time.Time `json:"backoff_until"`
	Health        string     `json:"health"`
	Error         string     `json:"error"`
}

// apmtel clusters --json, read by value: alpha's sealed run and its
// success, beta backing off after three failures (its error says until
// when and why), gamma disabled with the file's reason and no next due
// time; each cluster's runs come from its own key space. The table has one
// line per cluster. A single-cluster deployment shows one row.
func TestClustersJSON(t *testing.T) {
	t.Parallel()
	env := fleetEnv(t)
	ctx := context.Background()
	alpha := storeOf(t, env, "alpha")
	start := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	sealed, err := runtest.Seed(ctx, alpha, runtest.Spec{ID: "manual-alpha-1", Tasks: []string{"cloud", "host"}, Start: start, Upload: run.UploadUploaded})
	if err != nil {
		t.Fatal(err)
	}
	backOff(t, env, "beta", "connection refused")

	out, errOut, code := runMain(env, "clusters", "--json")
	if code != 0 {
		t.Fatalf("clusters --json: exit %d: %s", code, errOut)
	}
	mustJSON(t, "clusters --json", out)
	var rows []clusterRowJSON
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rows {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{"alpha", "beta", "gamma"}) {
		t.Fatalf("rows %v, want alpha, beta, gamma", names)
	}
	a, b, g := rows[0], rows[1], rows[2]
	if !a.Enabled || a.LastRun == nil || a.LastRun.ID != "manual-alpha-1" || a.LastRun.Status != "sealed" || a.LastRun.Upload != "uploaded" ||
		a.LastSuccessAt == nil || !a.LastSuccessAt.Equal(sealed.SealedAt) || a.NextDueAt == nil || a.BackoffUntil != nil || a.Error != "" || a.Health != "healthy" {
		t.Errorf("alpha: %+v (last run %+v), want its sealed run manual-alpha-1 sealed at %s", a, a.LastRun, sealed.SealedAt)
	}
	if !b.Enabled || b.LastRun != nil || b.LastSuccessAt != nil || b.BackoffUntil == nil || b.Health != "backing-off" ||
		!strings.HasPrefix(b.Error, "backing off until ") || !strings.HasSuffix(b.Error, ": connection refused") ||
		b.NextDueAt == nil || b.NextDueAt.Before(*b.BackoffUntil) {
		t.Errorf("beta: %+v, want backing off after 3 failures, next due after the backoff", b)
	}
	if g.Enabled || g.DisabledReason == "" || g.NextDueAt != nil || g.Error != "disabled: "+g.DisabledReason {
		t.Errorf("gamma: %+v, want disabled with a reason and no next due time", g)
	}

	out, _, code = runMain(env, "clusters")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 4 || !strings.HasPrefix(lines[1], "alpha") || !strings.Contains(lines[1], "manual-alpha-1") ||
		!strings.Contains(lines[2], "backing off until") || !strings.Contains(lines[3], "disabled: ") {
		t.Errorf("clusters: exit %d\n%s", code, out)
	}

	// Without a clusters file: the one APMTEL_SOURCE_* cluster.
	single := redisEnv(t)
	single["APMTEL_SOURCE_URL"] = "http://127.0.0.1:9"
	single["APMTEL_SOURCE_NAME"] = "solo"
	out, errOut, code = runMain(single, "clusters", "--json")
	rows = nil
	if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil || len(rows) != 1 || rows[0].Name != "solo" || !rows[0].Enabled || rows[0].LastRun != nil {
		t.Errorf("single cluster: exit %d, %v, rows %+v; %s", code, err, rows, errOut)
	}
}

// --cluster on every command that reads stored runs: each reads that
// cluster's key space; several clusters without --cluster and an unknown
// name are usage errors (exit 2), the latter with the closest name.
func TestClusterFlagOnEachCommand(t *testing.T) {
	t.Parallel()
	env := fleetEnv(t)
	ctx := context.Background()
	for _, n := range []string{"alpha", "beta"} {
		if _, err := runtest.Seed(ctx, storeOf(t, env, n), runtest.Spec{ID: "run-" + n, Tasks: []string{"cloud"}, Start: time.Now().Add(-time.Minute), Upload: run.UploadUploaded}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"alpha", "beta"} {
		other := map[string]string{"alpha": "beta", "beta": "alpha"}[n]
		out, errOut, code := runMain(env, "runs", "--cluster", n, "--json")
		var runs []run.Run
		if err := json.Unmarshal([]byte(out), &runs); code != 0 || err != nil || len(runs) != 1 || runs[0].ID != "run-"+n {
			t.Errorf("runs --cluster %s: exit %d, %v, %+v; %s", n, code, err, runs, errOut)
		}
		if _, errOut, code := runMain(env, "runs", "run-"+other, "--cluster", n); code != 1 || !strings.Contains(errOut, "no run run-"+other) {
			t.Errorf("runs run-%s --cluster %s: exit %d, %q; want not found in %s's key space", other, n, code, errOut, n)
		}
		if out, errOut, code := runMain(env, "snapshot", "--cluster", n, "--report", "--json"); code != 0 || !strings.Contains(out, `"run-`+n+`"`) {
			t.Errorf("snapshot --cluster %s: exit %d, %q %q", n, code, out, errOut)
		}
		// A sealed run cannot be cancelled; the refusal names the run, so
		// it was found in this cluster's key space.
		if _, errOut, code := runMain(env, "cancel", "run-"+n, "--cluster", n); code != 1 || !strings.Contains(errOut, "run-"+n) || strings.Contains(errOut, "not found") {
			t.Errorf("cancel --cluster %s: exit %d, %q", n, code, errOut)
		}
		if out, errOut, code := runMain(env, "upload", "run-"+n, "--cluster", n); code != 0 || !strings.Contains(out, "run run-"+n+": upload enqueued") {
			t.Errorf("upload --cluster %s: exit %d, %q %q", n, code, out, errOut)
		}
	}
	for _, args := range [][]string{{"runs"}, {"snapshot"}, {"cancel", "x"}, {"upload", "x"}, {"preview", "cloud"}, {"run"}} {
		_, errOut, code := runMain(env, args...)
		if code != 2 || !strings.Contains(errOut, "3 clusters are configured: name one with --cluster NAME (alpha, beta, gamma)") {
			t.Errorf("%v without --cluster: exit %d, %q", args, code, errOut)
		}
		_, errOut, code = runMain(env, append(args, "--cluster", "alpah")...)
		if code != 2 || !strings.Contains(errOut, `--cluster: unknown cluster "alpah" (did you mean "alpha"?)`) {
			t.Errorf("%v --cluster alpah: exit %d, %q", args, code, errOut)
		}
		_, errOut, code = runMain(env, append(args, "--cluster", "zzzzzzzzzz")...)
		if code != 2 || !strings.Contains(errOut, `unknown cluster "zzzzzzzzzz" (configured: alpha, beta, gamma)`) {
			t.Errorf("%v --cluster zzzzzzzzzz: exit %d, %q", args, code, errOut)
		}
	}
	if _, errOut, code := runMain(env, "run", "--all", "--cluster", "alpha"); code != 2 || !strings.Contains(errOut, "leave out --cluster") {
		t.Errorf("run --all --cluster: exit %d, %q", code, errOut)
	}
	for _, args := range [][]string{{"run", "--cluster", "gamma"}, {"run", "--cluster", "gamma", "--cluster", "alpha"}} {
		if _, errOut, code := runMain(env, args...); code != 1 || !strings.Contains(errOut, "cluster gamma is disabled: ") {
			t.Errorf("%v: exit %d, %q", args, code, errOut)
		}
	}
	if l, _ := storeOf(t, env, "gamma").List(ctx, 5); len(l) != 0 {
		t.Errorf("the disabled gamma got runs %v", l)
	}
}

// run --all --wait with two clusters: one run per enabled cluster, each in
// its own key space, followed together; the runs' states are written
// through each cluster's run store as the workers would (beta's task
// fails), so the command prints one summary line per cluster and exits 1
// naming beta; with --json, stdout is one list. beta is backing off: an
// explicit run starts it all the same.
func TestRunAllWait(t *testing.T) {
	t.Parallel()
	env := fleetEnv(t)
	ctx := context.Background()
	backOff(t, env, "beta", "connection refused")
	stores := map[string]*run.Store{"alpha": storeOf(t, env, "alpha"), "beta": storeOf(t, env, "beta"), "gamma": storeOf(t, env, "gamma")}
	// The workers' part: complete each cluster's open run once it exists.
	play := func(fail map[string]map[string]string) chan error {
		done := make(chan error, 1)
		go func() {
			deadline := time.Now().Add(time.Minute)
			left := map[string]bool{"alpha": true, "beta": true}
			for len(left) > 0 && time.Now().Before(deadline) {
				for n := range left {
					r, open, err := stores[n].OpenFull(ctx)
					if err != nil || !open {
						continue
					}
					if _, err := runtest.Complete(ctx, stores[n], r, runtest.Spec{Fail: fail[n], Upload: run.UploadUploaded}); err != nil {
						done <- fmt.Errorf("%s: %w", n, err)
						return
					}
					delete(left, n)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if len(left) > 0 {
				done <- fmt.Errorf("no open run of %v", left)
				return
			}
			done <- nil
		}()
		return done
	}

	fail := map[string]map[string]string{"beta": {"cloud": "search_phase_execution_exception"}}
	done := play(fail)
	out, errOut, code := runMain(env, "run", "--all", "--wait", "--poll", "20ms", "--timeout", "1m")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 1 || len(lines) != 4 || !strings.Contains(errOut, "1 of 2 clusters failed: beta") {
		t.Fatalf("run --all --wait: exit %d\n%s\n%s", code, out, errOut)
	}
	for i, n := range []string{"alpha", "beta"} {
		list, err := stores[n].List(ctx, 5)
		if err != nil || len(list) != 1 {
			t.Fatalf("%s: %v, %d runs; want 1", n, err, len(list))
		}
		r := list[0]
		if lines[i] != n+" "+r.ID {
			t.Errorf("line %d %q, want %q", i, lines[i], n+" "+r.ID)
		}
		ok := len(r.Tasks)
		if n == "beta" {
			ok--
		}
		want := fmt.Sprintf("cluster %s: run %s (full): sealed, %d/%d tasks ok, upload uploaded to telemetry/%s:%s", n, r.ID, ok, len(r.Tasks), runtest.Cluster.ClusterUUID, r.ID)
		if lines[2+i] != want {
			t.Errorf("summary %q, want %q", lines[2+i], want)
		}
	}
	if l, _ := stores["gamma"].List(ctx, 5); len(l) != 0 {
		t.Errorf("the disabled gamma got runs %v", l)
	}

	// --json: stdout is one list, a document per cluster; all succeed.
	done = play(nil)
	out, errOut, code = runMain(env, "run", "--all", "--wait", "--json", "--poll", "20ms", "--timeout", "1m", "--force")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mustJSON(t, "run --all --wait --json", out)
	var docs []struct {
		Cluster string  `json:"cluster"`
		Run     run.Run `json:"run"`
		Tasks   map[string]run.TaskRecord
	}
	if err := json.Unmarshal([]byte(out), &docs); code != 0 || err != nil || len(docs) != 2 {
		t.Fatalf("run --all --wait --json: exit %d, %v\n%s\n%s", code, err, out, errOut)
	}
	for i, n := range []string{"alpha", "beta"} {
		d := docs[i]
		if d.Cluster != n || d.Run.Status != run.StatusSealed || d.Run.Outcome() != run.OutcomeOK || len(d.Tasks) != len(d.Run.Tasks) ||
			!strings.Contains(errOut, n+" "+d.Run.ID) {
			t.Errorf("document %d: cluster %s, run %s %s, %d tasks; stderr %q", i, d.Cluster, d.Run.ID, d.Run.Status, len(d.Tasks), errOut)
		}
	}
}

// The monitor with a clusters file serves the fleet page (one row per
// cluster, each linking to its runs) and the per-cluster gauges, from the
// same runs as `apmtel clusters`.
func TestMonitorServesFleet(t *testing.T) {
	t.Parallel()
	env := fleetEnv(t)
	ctx := context.Background()
	if _, err := runtest.Seed(ctx, storeOf(t, env, "alpha"), runtest.Spec{ID: "run-alpha", Tasks: []string{"cloud"}, Start: time.Now().Add(-time.Minute), Upload: run.UploadUploaded}); err != nil {
		t.Fatal(err)
	}
	env["APMTEL_MONITOR_ADDR"] = "127.0.0.1:0"
	env["APMTEL_MONITOR_TOKEN"] = "fleet-token-0123456789"
	cfg, err := config.Load(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serveMonitor(mctx, cfg, testRuntime(t, cfg), zerolog.Nop(), ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("monitor: %v", err)
	}
	defer func() { cancel(); <-done }()
	base := "http://" + addr
	code, body := fetch(t, base+"/fleet", cfg.MonitorToken)
	if code != 200 {
		t.Fatalf("/fleet = %d %.300q", code, body)
	}
	for _, n := range []string{"alpha", "beta", "gamma"} {
		if !strings.Contains(body, `/runs?cluster=`+n) {
			t.Errorf("/fleet has no link to %s's runs", n)
		}
	}
	if code, body := fetch(t, base+"/runs?cluster=alpha", cfg.MonitorToken); code != 200 || !strings.Contains(body, `run-alpha`) {
		t.Errorf("/runs?cluster=alpha = %d, missing run-alpha", code)
	}
	code, body = fetch(t, base+"/metrics", cfg.MonitorToken)
	for _, want := range []string{`apmtel_cluster_last_run_status{cluster="alpha",status="ok"} 1`, `apmtel_cluster_last_run_status{cluster="beta",status="ok"} 0`, `apmtel_cluster_metrics_overflow 0`} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics = %d, missing %s", code, want)
		}
	}
}

// preview --cluster NAME collects from that cluster's URL: the reachable
// one answers with its cluster_uuid, the unreachable one fails its task.
func TestPreviewCluster(t *testing.T) {
	t.Parallel()
	url := testenv.ESURL(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "clusters.yml")
	yml := fmt.Sprintf("clusters:\n  - name: reach\n    urls: [%q]\n  - name: down\n    urls: [\"http://127.0.0.1:1\"]\n", url)
	if err := os.WriteFile(file, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"APMTEL_CLUSTERS_FILE": file, "APMTEL_SEARCH_CONCURRENCY": "0", "APMTEL_DATA_DIR": dir, "APMTEL_KIBANA_VERSION": "9.2.0"}
	out, errOut, code := runMain(env, "preview", "--cluster", "reach", "--envelope", "--task", "cloud")
	var doc struct {
		ClusterUUID string `json:"cluster_uuid"`
	}
	if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil || doc.ClusterUUID == "" {
		t.Errorf("preview --cluster reach: exit %d, %v, uuid %q; %s", code, err, doc.ClusterUUID, errOut)
	}
	if _, errOut, code := runMain(env, "preview", "--cluster", "down", "--task", "cloud"); code != 1 || !strings.Contains(errOut, "task cloud") {
		t.Errorf("preview --cluster down: exit %d, %q; want the task failed", code, errOut)
	}
}

// --cluster completes the names of the clusters file, on every command
// that takes it; without a file, nothing.
func TestClusterCompletion(t *testing.T) {
	env := fleetEnv(t)
	for _, args := range [][]string{{"runs", "--cluster", ""}, {"run", "--cluster", ""}, {"snapshot", "--cluster", ""}, {"cancel", "--cluster", ""}, {"upload", "--cluster", ""}, {"preview", "--cluster", ""}} {
		out, errOut, code := runMain(env, append([]string{"__complete"}, args...)...)
		if code != 0 || !strings.HasPrefix(out, "alpha\nbeta\ngamma\n:4\n") {
			t.Errorf("complete %v: exit %d, %q %q", args, code, out, errOut)
		}
	}
	if out, _, _ := runMain(env, "__complete", "run", "--cluster", "b"); !strings.HasPrefix(out, "beta\n:4\n") {
		t.Errorf("complete run --cluster b: %q", out)
	}
	if out, _, _ := runMain(nil, "__complete", "runs", "--cluster", ""); !strings.HasPrefix(out, ":4\n") {
		t.Errorf("complete without a clusters file: %q", out)
	}
}

// run --all --wait with real workers of a clusters file: two clusters (both
// in front of the test engine, each with its own key space), one worker
// process; each cluster's run ends with its task ok, one summary line each,
// exit 0; with --json stdout is one list.
func TestRunAllWithWorkers(t *testing.T) {
	t.Parallel()
	env := redisEnv(t)
	ix := testenv.Indices(testenv.Prefix(t, testenv.ES(t)))
	dir := t.TempDir()
	file := filepath.Join(dir, "clusters.yml")
	var yml strings.Builder
	yml.WriteString("clusters:\n")
	for _, n := range []string{"east", "west"} {
		fmt.Fprintf(&yml, "  - name: %s\n    urls: [%q]\n    indices: {transaction: %q, span: %q, error: %q, metric: %q, onboarding: %q, agent_configuration: %q, kibana: %q}\n",
			n, testenv.ESURL(t), ix.Transaction, ix.Span, ix.Error, ix.Metric, ix.Onboarding, ix.AgentConfiguration, ix.Kibana)
	}
	if err := os.WriteFile(file, []byte(yml.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	env["APMTEL_CLUSTERS_FILE"] = file
	env["APMTEL_DATA_DIR"] = dir
	env["APMTEL_POLL_INTERVAL"] = "50ms"
	var procEnv []string
	for k, v := range env {
		procEnv = append(procEnv, k+"="+v)
	}
	testenv.NewProcs(t).Start("worker", testenv.Env(procEnv...), "worker")
	out, errOut, code := runMain(env, "run", "--all", "--wait", "--timeout", "2m", "--poll", "50ms", "cloud")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 4 {
		t.Fatalf("run --all --wait: exit %d\n%s\n%s", code, out, errOut)
	}
	for i, n := range []string{"east", "west"} {
		id, ok := strings.CutPrefix(lines[i], n+" ")
		want := fmt.Sprintf("cluster %s: run %s (partial): sealed, 1/1 tasks ok, upload skipped", n, id)
		if !ok || !strings.HasPrefix(lines[2+i], want) {
			t.Errorf("cluster %s: lines %q, %q; want %q", n, lines[i], lines[2+i], want)
		}
		if list, err := storeOf(t, env, n).List(context.Background(), 5); err != nil || len(list) != 1 || list[0].ID != id {
			t.Errorf("cluster %s's key space holds %v (%v), want run %s", n, list, err, id)
		}
	}
	out, errOut, code = runMain(env, "run", "--all", "--wait", "--json", "--timeout", "2m", "--poll", "50ms", "cloud")
	var docs []struct {
		Cluster string  `json:"cluster"`
		Run     run.Run `json:"run"`
	}
	if err := json.Unmarshal([]byte(out), &docs); code != 0 || err != nil || len(docs) != 2 || docs[0].Cluster != "east" || docs[1].Cluster != "west" ||
		docs[0].Run.Status != run.StatusSealed || docs[1].Run.Status != run.StatusSealed {
		t.Errorf("run --all --wait --json: exit %d, %v, %+v\n%s", code, err, docs, errOut)
	}
}
