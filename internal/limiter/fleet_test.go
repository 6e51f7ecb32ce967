package limiter

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/testenv"
)

// gauge counts requests in flight and keeps the peak.
type gauge struct{ now, peak atomic.Int64 }

func (g *gauge) enter() {
	n := g.now.Add(1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
}

func (g *gauge) leave() { g.now.Add(-1) }

// fleetDoer is one source cluster seen by the fleet: its own gauge and the
// fleet's.
type fleetDoer struct{ cluster, fleet *gauge }

func (d fleetDoer) Do(ctx context.Context, r es.Request) ([]byte, error) {
	d.cluster.enter()
	d.fleet.enter()
	defer d.cluster.leave()
	defer d.fleet.leave()
	time.Sleep(3 * time.Millisecond)
	return []byte(`{}`), nil
}

// fleetLoad sends perProc requests at once from each of procs processes of
// each of clusters source clusters (cap per cluster each), all under one
// fleet cap, and checks every bound and that every request was served and
// nothing was left in Redis.
func fleetLoad(t *testing.T, rdb redis.UniversalClient, prefix string, clusters, procs, perProc, perCluster, fleetCap int) {
	t.Helper()
	fleet := &gauge{}
	fk := keys.NewFleet(prefix)
	var wg sync.WaitGroup
	var served atomic.Int64
	gauges := make([]*gauge, clusters)
	for c := range clusters {
		gauges[c] = &gauge{}
		ks := keys.NewFor(prefix, fmt.Sprint("c", c))
		for range procs {
			// Each process has its own Fleet and Semaphore values.
			f := NewFleet(rdb, fk, fleetCap)
			s := New(rdb, ks, perCluster, Options{Fleet: f})
			t.Cleanup(func() { _ = s.Close(); _ = f.Close() })
			fanOut(t, &wg, s.Doer(fleetDoer{gauges[c], fleet}), perProc, time.Minute, &served)
		}
	}
	wg.Wait()
	if want := int64(clusters * procs * perProc); served.Load() != want {
		t.Errorf("served %d of %d", served.Load(), want)
	}
	for c, g := range gauges {
		if p := g.peak.Load(); p > int64(perCluster) || p < 1 {
			t.Errorf("cluster c%d: peak %d in flight, cap %d", c, p, perCluster)
		}
	}
	if p := fleet.peak.Load(); p > int64(fleetCap) || p < int64(min(fleetCap, clusters*perCluster))-1 {
		t.Errorf("fleet: peak %d in flight, cap %d", p, fleetCap)
	}
	t.Logf("fleet peak %d (cap %d)", fleet.peak.Load(), fleetCap)
	left := []string{fk.SearchSlots(), fk.SearchQueue(), fk.SearchWaiters()}
	for c := range clusters {
		ks := keys.NewFor(prefix, fmt.Sprint("c", c))
		left = append(left, ks.SearchSlots(), ks.SearchQueue(), ks.SearchWaiters())
	}
	for _, k := range left {
		if n := rdb.ZCard(context.Background(), k).Val(); n != 0 {
			t.Errorf("%s: %d tickets left", k, n)
		}
	}
}

// Four clusters of cap 3, two processes each, 12 requests at once per
// process, under a fleet cap of 5: each cluster's bound and the fleet's hold.
func TestFleetAndClusterCapsBothHold(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	fleetLoad(t, rdb, testPrefix(t), 4, 2, 12, 3, 5)
}

// A fleet cap above the sum of the clusters' caps binds nothing: the
// clusters' own caps are reached.
func TestFleetCapAboveClusterCaps(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	fleetLoad(t, rdb, testPrefix(t), 3, 2, 8, 2, 100)
}

// A request that waits for a fleet slot holds no slot of its cluster
// meanwhile, and gets the fleet slot when it is released.
func TestFleetWaiterHoldsNoClusterSlot(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	prefix := testPrefix(t)
	f := NewFleet(rdb, keys.NewFleet(prefix), 1)
	t.Cleanup(func() { _ = f.Close() })
	a := New(rdb, keys.NewFor(prefix, "a"), 1, Options{Fleet: f})
	kb := keys.NewFor(prefix, "b")
	b := New(rdb, kb, 1, Options{Fleet: f})
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	_, releaseA, err := a.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, release, err := b.Acquire(context.Background())
		if err == nil {
			release()
		}
		got <- err
	}()
	testenv.Eventually(t, 5*time.Second, "b's ticket in the fleet's queue", func() bool {
		return rdb.ZCard(context.Background(), keys.NewFleet(prefix).SearchQueue()).Val() == 1
	})
	// Taking its cluster's slot and giving it back when the fleet had none
	// is one round trip; from then on it asks the fleet alone.
	time.Sleep(20 * time.Millisecond)
	for range 20 {
		if n := rdb.ZCard(context.Background(), kb.SearchSlots()).Val(); n != 0 {
			t.Fatalf("b holds %d slots of its cluster while it waits for the fleet", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	releaseA()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("b did not get the released fleet slot")
	}
}

// Without a fleet, no fleet key is ever written: a single cluster works as
// it always did.
func TestNoFleetTouchesNoFleetKey(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	prefix := testPrefix(t)
	s := New(rdb, keys.NewFor(prefix, "solo"), 1, Options{})
	t.Cleanup(func() { _ = s.Close() })
	_, release, err := s.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fk := keys.NewFleet(prefix)
	if n := rdb.Exists(context.Background(), fk.SearchSlots(), fk.SearchQueue(), fk.SearchWaiters()).Val(); n != 0 {
		t.Errorf("%d fleet keys written without a fleet", n)
	}
	release()
}

// The same load on a 3-master Redis Cluster: each script touches one slot
// (a cluster's keys or the fleet's), so nothing is refused as CROSSSLOT, and
// both caps hold with the clusters' keys and the fleet's on different nodes.
func TestFleetOnRedisCluster(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil && os.Getenv("CI") != "true" {
		t.Skip("redis-server is not installed: run scripts/redis-ha.sh ensure")
	}
	dir := t.TempDir()
	testenv.Script(t, "redis-ha.sh", "cluster", dir)
	t.Cleanup(func() { testenv.Script(t, "redis-ha.sh", "stop", dir) })
	addrs := clusterAddrs(t, dir)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { _ = rdb.Close() })
	prefix := "apmtel"
	nodes := map[string]bool{}
	for _, k := range []string{keys.NewFleet(prefix).SearchSlots(), keys.NewFor(prefix, "c0").SearchSlots(),
		keys.NewFor(prefix, "c1").SearchSlots(), keys.NewFor(prefix, "c2").SearchSlots()} {
		n, err := rdb.MasterForKey(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		nodes[n.Options().Addr] = true
	}
	if len(nodes) < 2 {
		t.Fatalf("the fleet's and clusters' keys all on one node %v: the test would not cross slots", nodes)
	}
	fleetLoad(t, rdb, prefix, 3, 2, 8, 2, 4)
}

func clusterAddrs(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimPrefix(sc.Text(), "export "), "APMTEL_TEST_CLUSTER_ADDRS="); ok {
			return strings.Split(v, ",")
		}
	}
	t.Fatal("no APMTEL_TEST_CLUSTER_ADDRS in the cluster's env")
	return nil
}
