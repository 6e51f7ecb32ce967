package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/backoff"
	"github.com/apmtel/apmtel/internal/faultproxy"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/scheduler"
)

// fleetCap is every virtual cluster's own cap in the fleet tests.
const fleetCap = 2

// virtualFleet starts n virtual clusters in front of the engine, each
// through a proxy of its own, each reporting a version of its own.
func virtualFleet(t *testing.T, n int, prefix string) *faultproxy.Fleet {
	t.Helper()
	u, err := url.Parse(testenv.OpenSearchURL(t))
	if err != nil {
		t.Fatal(err)
	}
	vf, err := faultproxy.NewFleet(n, prefix, func(int) http.Handler { return faultproxy.New(u) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vf.Close() })
	for i, v := range vf.Clusters() {
		v.SetVersion(fmt.Sprintf("8.%d.%d", 10+i, i))
	}
	return vf
}

// addresses lists the fleet's cluster names and their URLs.
func addresses(vf *faultproxy.Fleet) ([]string, map[string]string) {
	var names []string
	urls := map[string]string{}
	for _, v := range vf.Clusters() {
		names = append(names, v.Name)
		urls[v.Name] = v.URL()
	}
	return names, urls
}

// clustersFile writes a clusters file naming each cluster with its URL
// (urls overrides some) and cap.
func clustersFile(t *testing.T, path string, names []string, urls map[string]string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("clusters:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  - name: %s\n    urls: [%q]\n    search_concurrency: %d\n", n, urls[n], fleetCap)
	}
	if err := os.WriteFile(path+".tmp", []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// fleetStack is a stack collecting from a clusters file: two workers, one
// scheduler, the file sink under dataDir.
type fleetStack struct {
	*stack
	file, dataDir string
	slot          time.Time
}

func startFleet(t *testing.T, names []string, urls map[string]string, extra ...string) *fleetStack {
	t.Helper()
	// A slot boundary during the test would start a second run per cluster.
	if next := scheduler.SlotStart(time.Now(), time.Hour).Add(time.Hour); time.Until(next) < 3*time.Minute {
		time.Sleep(time.Until(next) + time.Second)
	}
	s := newStack(t)
	s.loadFixture(t)
	fs := &fleetStack{stack: s, file: filepath.Join(t.TempDir(), "clusters.yaml"), dataDir: t.TempDir()}
	clustersFile(t, fs.file, names, urls)
	env := s.env(t, "", append([]string{"APMTEL_CLUSTERS_FILE=" + fs.file, "APMTEL_FLEET_SPREAD=0s", "APMTEL_INTERVAL=1h",
		"APMTEL_DATA_DIR=" + fs.dataDir, "APMTEL_FLEET_CONCURRENCY=16", "APMTEL_TASK_TIMEOUT=1m", "APMTEL_RUN_DEADLINE=3m", "APMTEL_MAX_RETRY=0"}, extra...)...)
	fs.slot = scheduler.SlotStart(time.Now(), time.Hour)
	s.Start("worker-1", env, "worker")
	s.Start("worker-2", env, "worker")
	s.Start("scheduler", env, "scheduler")
	return fs
}

// clusterRun is the slot's run of a cluster once it is sealed and its
// upload ended.
func (fs *fleetStack) clusterRun(t *testing.T, name string, timeout time.Duration) run.Run {
	t.Helper()
	st := run.NewStore(fs.rdb, keys.NewFor("", name), time.Hour, 50)
	id := scheduler.ScheduledRunID(fs.slot)
	var r run.Run
	fs.Eventually(timeout, "run "+id+" of "+name+" sealed and its upload ended", func() bool {
		var err error
		r, err = st.Get(context.Background(), id)
		return err == nil && r.Status == run.StatusSealed &&
			(r.Upload.State == run.UploadWritten || r.Upload.State == run.UploadSkipped || r.Upload.State == run.UploadFailed)
	})
	return r
}

// documents reads the payload files: cluster_uuid → the document's text.
func (fs *fleetStack) documents(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(fs.dataDir, "payloads", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			UUID string `json:"cluster_uuid"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, dup := out[doc.UUID]; dup {
			t.Errorf("two documents of cluster_uuid %s", doc.UUID)
		}
		out[doc.UUID] = string(b)
	}
	return out
}

// One slot of 10 clusters: 10 runs, 10 documents with 10 distinct
// cluster_uuid, each the cluster's own (its uuid, name and version, none
// of another's, in its document and in its run's record); every cluster's
// cap held at its own door.
func TestFleetSlotOfTenClusters(t *testing.T) {
	t.Parallel()
	vf := virtualFleet(t, 10, "fl")
	names, urls := addresses(vf)
	fs := startFleet(t, names, urls)
	runs := map[string]run.Run{}
	for _, n := range names {
		r := fs.clusterRun(t, n, 4*time.Minute)
		if r.Upload.State != run.UploadWritten {
			t.Errorf("%s: upload %s, want written", n, r.Upload)
		}
		runs[n] = r
	}
	docs := fs.documents(t)
	if len(docs) != 10 {
		t.Fatalf("%d documents, want 10", len(docs))
	}
	stats := vf.Stats()
	for i, v := range vf.Clusters() {
		doc, ok := docs[v.UUID]
		if !ok {
			t.Errorf("no document of %s (cluster_uuid %s)", v.Name, v.UUID)
			continue
		}
		var d struct {
			Name    string `json:"cluster_name"`
			Version string `json:"version"`
		}
		_ = json.Unmarshal([]byte(doc), &d)
		if d.Name != v.Name || d.Version != fmt.Sprintf("8.%d.%d", 10+i, i) {
			t.Errorf("document of %s: cluster_name %q version %q", v.Name, d.Name, d.Version)
		}
		record, _ := json.Marshal(runs[v.Name])
		for j, o := range vf.Clusters() {
			if j == i {
				continue
			}
			for _, leak := range []string{o.UUID, `"` + o.Name + `"`, fmt.Sprintf(`"8.%d.%d"`, 10+j, j)} {
				if strings.Contains(doc, leak) {
					t.Errorf("document of %s holds %s of %s", v.Name, leak, o.Name)
				}
				if strings.Contains(string(record), leak) {
					t.Errorf("run record of %s holds %s of %s", v.Name, leak, o.Name)
				}
			}
		}
		if st := stats[v.Name]; st.MaxInFlight > fleetCap || st.Requests == 0 {
			t.Errorf("%s: %d requests, at most %d at once, want some and at most its cap %d", v.Name, st.Requests, st.MaxInFlight, fleetCap)
		}
	}
	t.Logf("per-cluster max in flight: %v", stats)
}

// One cluster of 10 down (nothing listens at its URL): 9 documents; its
// run is sealed with every task failed, not uploaded, and counted as its
// cluster's failed run; the others are untouched.
func TestFleetOneClusterDown(t *testing.T) {
	t.Parallel()
	vf := virtualFleet(t, 9, "fd")
	names, urls := addresses(vf)
	down := "fd-down"
	names = append(names, down)
	urls[down] = "http://" + testenv.FreeAddr(t)
	fs := startFleet(t, names, urls, "APMTEL_SEARCH_TIMEOUT=5s")
	for _, n := range names {
		r := fs.clusterRun(t, n, 4*time.Minute)
		switch {
		case n == down:
			if r.Report == nil || len(r.Report.Failed) != len(r.Tasks) || r.Upload.State != run.UploadSkipped {
				t.Errorf("down cluster: report %+v upload %s, want every task failed and no upload", r.Report, r.Upload)
			}
		case r.Upload.State != run.UploadWritten || (r.Report != nil && len(r.Report.Failed) > 0):
			t.Errorf("%s: upload %s, failed tasks %v; want written and none failed", n, r.Upload, r.Report.Failed)
		}
	}
	if docs := fs.documents(t); len(docs) != 9 {
		t.Errorf("%d documents, want 9", len(docs))
	}
	st, err := backoff.NewStore(fs.rdb, keys.NewFor("", down), backoff.DefaultPolicy(time.Hour), time.Hour).Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Failures != 1 || st.LastRun != scheduler.ScheduledRunID(fs.slot) || st.LastError == "" {
		t.Errorf("down cluster's backoff state %+v, want one failed run with its error", st)
	}
	for _, n := range names[:3] {
		if st, _ := backoff.NewStore(fs.rdb, keys.NewFor("", n), backoff.DefaultPolicy(time.Hour), time.Hour).Get(context.Background()); st.Failures != 0 {
			t.Errorf("%s: backoff state %+v, want healthy", n, st)
		}
	}
}

// A clusters file beside an APMTEL_SOURCE_* setting, or a clusters file
// that does not parse, stops the worker and the scheduler at start: exit
// 2, one line naming the settings or the file's line.
func TestFleetConfigurationErrors(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.yaml"), filepath.Join(dir, "bad.yaml")
	clustersFile(t, good, []string{"one"}, map[string]string{"one": "http://127.0.0.1:1"})
	if err := os.WriteFile(bad, []byte("clusters:\n  - name: one\n    urls: [\"http://127.0.0.1:1\"]\n    pasword_file: /x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, cmd string
		env       []string
		want      []string
	}{
		{"both, worker", "worker", s.env(t, "http://127.0.0.1:9200", "APMTEL_CLUSTERS_FILE="+good), []string{"APMTEL_CLUSTERS_FILE and APMTEL_SOURCE_URL", "not both"}},
		{"malformed, worker", "worker", s.env(t, "", "APMTEL_CLUSTERS_FILE="+bad), []string{"bad.yaml:4", "pasword_file"}},
		{"malformed, scheduler", "scheduler", s.env(t, "", "APMTEL_CLUSTERS_FILE="+bad), []string{"bad.yaml:4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := testenv.Exec(t, tc.env, tc.cmd)
			if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Fatalf("exit %d, stderr %q; want 2 and one line", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
		})
	}
}
