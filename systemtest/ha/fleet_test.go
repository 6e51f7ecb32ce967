package ha

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apmtel/apmtel/internal/faultproxy"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/scheduler"
)

// A fleet of 3 virtual clusters on a 3-master Redis Cluster, with the
// fleet-wide cap: each cluster's slot run seals and writes its document,
// every key of a cluster's run is in its cluster's slot, and the three
// clusters' slots differ (the hash tag spreads a fleet over the masters).
func TestClusterFleetEndToEnd(t *testing.T) {
	ps := testenv.NewProcs(t)
	top := topology(t, "cluster")
	addrs := top["APMTEL_TEST_CLUSTER_ADDRS"]
	u, err := url.Parse(testenv.OpenSearchURL(t))
	if err != nil {
		t.Fatal(err)
	}
	vf, err := faultproxy.NewFleet(3, "ha", func(int) http.Handler { return faultproxy.New(u) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vf.Close() })
	file := filepath.Join(t.TempDir(), "clusters.yaml")
	var b strings.Builder
	b.WriteString("clusters:\n")
	for _, v := range vf.Clusters() {
		fmt.Fprintf(&b, "  - name: %s\n    urls: [%q]\n    search_concurrency: 2\n", v.Name, v.URL())
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	// A slot boundary during the test would start a second run per cluster.
	if next := scheduler.SlotStart(time.Now(), time.Hour).Add(time.Hour); time.Until(next) < 3*time.Minute {
		time.Sleep(time.Until(next) + time.Second)
	}
	env, out := apmtelEnv(t, "APMTEL_REDIS_ADDR="+addrs, "APMTEL_REDIS_CLUSTER=true", "APMTEL_CLUSTERS_FILE="+file,
		"APMTEL_FLEET_SPREAD=0s", "APMTEL_INTERVAL=1h", "APMTEL_FLEET_CONCURRENCY=4")
	var fleetEnv []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "APMTEL_SOURCE_URL=") {
			fleetEnv = append(fleetEnv, kv)
		}
	}
	slot := scheduler.SlotStart(time.Now(), time.Hour)
	ps.Start("worker-1", fleetEnv, "worker")
	ps.Start("worker-2", fleetEnv, "worker")
	ps.Start("scheduler", fleetEnv, "scheduler")
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(addrs, ",")})
	defer rdb.Close()
	ctx := context.Background()
	id := scheduler.ScheduledRunID(slot)
	slots := map[int64]string{}
	for _, v := range vf.Clusters() {
		ks := keys.NewFor("", v.Name)
		st := run.NewStore(rdb, ks, time.Hour, 50)
		ps.Eventually(3*time.Minute, "run "+id+" of "+v.Name+" written", func() bool {
			r, err := st.Get(ctx, id)
			return err == nil && r.Status == run.StatusSealed && r.Upload.State == run.UploadWritten
		})
		want, _ := rdb.ClusterKeySlot(ctx, ks.Runs()).Result()
		for _, k := range append(ks.RunKeys(id), ks.Latest(), ks.LastGood()) {
			if got, _ := rdb.ClusterKeySlot(ctx, k).Result(); got != want {
				t.Errorf("%s in slot %d, its cluster's runs in %d", k, got, want)
			}
		}
		if other, dup := slots[want]; dup {
			t.Errorf("%s and %s share slot %d", v.Name, other, want)
		}
		slots[want] = v.Name
	}
	if n := payloads(t, out); n != 3 {
		t.Errorf("%d payload files, want 3", n)
	}
	for name, st := range vf.Stats() {
		if st.MaxInFlight > 2 || st.Requests == 0 {
			t.Errorf("%s: %d requests, %d at once; want some, at most its cap 2", name, st.Requests, st.MaxInFlight)
		}
	}
	t.Logf("clusters' slots: %v", slots)
}
