package systemtest

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/faultproxy"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/jobs"
	"github.com/apmtel/apmtel/scheduler"
)

// A reload adds a cluster and removes another without a restart: the added
// one runs in the current slot, the removed one's run — slowed so that
// most of its jobs are still queued — ends at once: its queued jobs are
// recorded as failed ("not in the clusters file"), none retried or
// archived, and the run seals before its deadline.
func TestFleetReloadAddsAndRemoves(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(testenv.OpenSearchURL(t))
	if err != nil {
		t.Fatal(err)
	}
	var proxies []*faultproxy.Proxy
	vf, err := faultproxy.NewFleet(4, "fr", func(int) http.Handler {
		p := faultproxy.New(u)
		proxies = append(proxies, p)
		return p
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vf.Close() })
	vcs := vf.Clusters()
	_, urls := addresses(vf)
	removed, added := vcs[2].Name, vcs[3].Name
	// The cluster to be removed answers slowly: its run is still going at the reload.
	proxies[2].SetFault(faultproxy.Fault{Mode: "delay", DelayMS: 1500})
	fs := startFleet(t, []string{vcs[0].Name, vcs[1].Name, removed}, urls)
	id := scheduler.ScheduledRunID(fs.slot)
	for _, n := range []string{vcs[0].Name, vcs[1].Name} {
		if r := fs.clusterRun(t, n, 3*time.Minute); r.Upload.State != run.UploadWritten {
			t.Errorf("%s: upload %s", n, r.Upload)
		}
	}
	ctx := context.Background()
	stRemoved := run.NewStore(fs.rdb, keys.NewFor("", removed), time.Hour, 50)
	fs.Eventually(time.Minute, "the slow cluster's run under way", func() bool {
		r, err := stRemoved.Get(ctx, id)
		return err == nil && r.Status == run.StatusOpen
	})
	clustersFile(t, fs.file, []string{vcs[0].Name, vcs[1].Name, added}, urls)
	reloaded := time.Now()

	if r := fs.clusterRun(t, added, 2*time.Minute); r.Upload.State != run.UploadWritten {
		t.Errorf("added cluster %s: upload %s, want written", added, r.Upload)
	}
	r := fs.clusterRun(t, removed, 2*time.Minute)
	if r.CloseReason != run.ReasonComplete {
		t.Errorf("removed cluster's run closed by %s, want complete (its jobs ended, no deadline)", r.CloseReason)
	}
	results, err := stRemoved.Results(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	quiet := 0
	for name, rec := range results {
		if rec.Status == run.TaskFailed && strings.Contains(rec.Error, "not in the clusters file") {
			quiet++
			if rec.Attempt != 1 {
				t.Errorf("task %s of the removed cluster: attempt %d, want 1 (no retry)", name, rec.Attempt)
			}
		}
	}
	if quiet == 0 {
		t.Errorf("no queued job of the removed cluster ended as not configured: %d results", len(results))
	}
	for _, q := range []string{jobs.QueueCollect, jobs.QueueControl} {
		if a, _ := fs.insp.ListArchivedTasks(q); len(a) != 0 {
			t.Errorf("queue %s: %d archived jobs, want none", q, len(a))
		}
		if rt, _ := fs.insp.ListRetryTasks(q); len(rt) != 0 {
			t.Errorf("queue %s: %d jobs waiting for a retry, want none", q, len(rt))
		}
	}
	t.Logf("after the reload: the added cluster's run and the removed one's end in %s; %d of the removed cluster's tasks ended as not configured",
		time.Since(reloaded).Round(100*time.Millisecond), quiet)
}
