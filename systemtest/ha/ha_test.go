package ha

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/internal/testenv"
)

// topology starts scripts/redis-ha.sh KIND in a temp dir and returns its env.
func topology(t *testing.T, kind string) map[string]string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil && os.Getenv("CI") != "true" {
		t.Skip("redis-server is not installed: run scripts/redis-ha.sh ensure")
	}
	dir := t.TempDir()
	testenv.Script(t, "redis-ha.sh", kind, dir)
	t.Cleanup(func() { testenv.Script(t, "redis-ha.sh", "stop", dir) })
	f, err := os.Open(filepath.Join(dir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if ok {
			env[k] = v
		}
	}
	return env
}

// apmtelEnv points apmtel at the test search engine with isolated, empty
// indices (every task answers zeros) and the given Redis settings.
func apmtelEnv(t *testing.T, redisEnv ...string) ([]string, string) {
	t.Helper()
	es := testenv.ES(t)
	p := testenv.Prefix(t, es)
	ix := testenv.Indices(p)
	data := t.TempDir()
	env := testenv.Env(append([]string{
		"APMTEL_SOURCE_URL=" + testenv.ESURL(t), "APMTEL_POLL_INTERVAL=100ms", "APMTEL_LOG_FORMAT=json", "APMTEL_DATA_DIR=" + data,
		"APMTEL_INDICES_TRANSACTION=" + ix.Transaction, "APMTEL_INDICES_SPAN=" + ix.Span, "APMTEL_INDICES_ERROR=" + ix.Error,
		"APMTEL_INDICES_METRIC=" + ix.Metric, "APMTEL_INDICES_ONBOARDING=" + ix.Onboarding,
		"APMTEL_INDICES_AGENT_CONFIGURATION=" + ix.AgentConfiguration, "APMTEL_INDICES_KIBANA=" + ix.Kibana,
	}, redisEnv...)...)
	return env, filepath.Join(data, "payloads")
}

func payloads(t *testing.T, dir string) int {
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	return len(files)
}

// The whole pipeline on a 3-master Redis Cluster: scheduler, two workers,
// a full run to its upload; every key of the run is in one slot.
func TestClusterEndToEnd(t *testing.T) {
	ps := testenv.NewProcs(t)
	top := topology(t, "cluster")
	addrs := top["APMTEL_TEST_CLUSTER_ADDRS"]
	// APMTEL_CATCHUP_GRACE=0s: the test needs the catch-up run at start, whatever the time of day.
	env, out := apmtelEnv(t, "APMTEL_REDIS_ADDR="+addrs, "APMTEL_REDIS_CLUSTER=true", "APMTEL_CATCHUP_GRACE=0s")
	ps.Start("worker-1", env, "worker")
	ps.Start("worker-2", env, "worker")
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(addrs, ",")})
	defer rdb.Close()
	ks := keys.New("")
	st := run.NewStore(rdb, ks, time.Hour, 50)
	ps.Start("scheduler", env, "scheduler")
	// The scheduler's catch-up run starts; `apmtel run --wait` follows it
	// rather than starting a second full run beside it.
	ps.Eventually(time.Minute, "the scheduler's catch-up run", func() bool {
		runs, err := st.List(context.Background(), 10)
		return err == nil && len(runs) == 1
	})
	stdout, stderr, code := testenv.Exec(t, env, "run", "--wait", "--timeout", "3m")
	n := len(telemetry.Default().Names())
	if code != 0 || !strings.Contains(stdout, fmt.Sprintf("%d/%d tasks ok", n, n)) || !strings.Contains(stdout, "upload written") ||
		!strings.Contains(stderr, "already in progress") {
		t.Fatalf("run --wait on a cluster: exit %d\n%s\n%s", code, stdout, stderr)
	}
	id := strings.SplitN(stdout, "\n", 2)[0]
	r, err := st.Get(context.Background(), id)
	if err != nil || r.Status != run.StatusSealed {
		t.Fatalf("run %s on the cluster: %+v %v", id, r, err)
	}
	want, _ := rdb.ClusterKeySlot(context.Background(), ks.Runs()).Result()
	for _, k := range append(ks.RunKeys(id), ks.Latest(), ks.LastGood()) {
		if got, _ := rdb.ClusterKeySlot(context.Background(), k).Result(); got != want {
			t.Errorf("%s in slot %d, runs in %d", k, got, want)
		}
	}
	// One full run, one payload.
	if runs, _ := st.List(context.Background(), 10); len(runs) != 1 || runs[0].ID != id || runs[0].Trigger != "scheduled" {
		t.Errorf("runs %+v, want the scheduler's one", runs)
	}
	if n := payloads(t, out); n != 1 {
		t.Errorf("%d payload files, want 1", n)
	}
}

// The Sentinel-watched master is SIGKILLed mid-run: Sentinel promotes the
// replica, the workers follow it, and the run still seals and uploads once.
func TestSentinelFailoverMidRun(t *testing.T) {
	ps := testenv.NewProcs(t)
	top := topology(t, "sentinel")
	sentinels := top["APMTEL_TEST_SENTINEL_ADDRS"]
	env, out := apmtelEnv(t, "APMTEL_REDIS_ADDR="+sentinels, "APMTEL_REDIS_SENTINEL_MASTER=apmtel",
		"APMTEL_TASK_TIMEOUT=20s", "APMTEL_SEARCH_TIMEOUT=10s", "APMTEL_RUN_DEADLINE=60s", "APMTEL_SEARCH_CONCURRENCY=1")
	ps.Start("worker-1", env, "worker")
	ps.Start("worker-2", env, "worker")
	stdout, stderr, code := testenv.Exec(t, env, "run")
	if code != 0 {
		t.Fatalf("run: %d %s", code, stderr)
	}
	id := strings.TrimSpace(stdout)
	sentinel := redis.NewSentinelClient(&redis.Options{Addr: strings.Split(sentinels, ",")[0]})
	defer sentinel.Close()
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "apmtel", SentinelAddrs: strings.Split(sentinels, ",")})
	defer rdb.Close()
	st := run.NewStore(rdb, keys.New(""), time.Hour, 50)
	// Kill the master once some tasks are recorded and others are not.
	ps.Eventually(time.Minute, "a few tasks recorded", func() bool {
		res, err := st.Results(context.Background(), id)
		done := 0
		for _, rec := range res {
			if rec.Status.Final() {
				done++
			}
		}
		return err == nil && done >= 3
	})
	var pid int
	fmt.Sscan(top["APMTEL_TEST_SENTINEL_MASTER_PID"], &pid)
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	old := top["APMTEL_TEST_SENTINEL_MASTER_ADDR"]
	var promoted time.Duration
	ps.Eventually(30*time.Second, "Sentinel to promote the replica", func() bool {
		a, err := sentinel.GetMasterAddrByName(context.Background(), "apmtel").Result()
		if err == nil && len(a) == 2 && a[0]+":"+a[1] != old {
			promoted = time.Since(killed)
			return true
		}
		return false
	})
	var sealed time.Duration
	var r run.Run
	ps.Eventually(3*time.Minute, "the run to seal and upload after the failover", func() bool {
		var err error
		r, err = st.Get(context.Background(), id)
		if err == nil && r.Status == run.StatusSealed && r.Upload.State.Ended() {
			sealed = time.Since(killed)
			return true
		}
		return false
	})
	if r.Upload.State != run.UploadWritten || payloads(t, out) != 1 {
		t.Errorf("upload %s, %d payload files; want written once", r.Upload, payloads(t, out))
	}
	res, _ := st.Results(context.Background(), id)
	ok := 0
	for _, rec := range res {
		if rec.Status == run.TaskOK {
			ok++
		}
	}
	t.Logf("close reason %s, %d/%d tasks ok", r.CloseReason, ok, len(r.Tasks))
	fmt.Fprintf(os.Stderr, "MEASURE sentinel failover: replica promoted %s after SIGKILL; run sealed and uploaded %s after it (%s, %d/%d ok)\n",
		promoted.Round(100*time.Millisecond), sealed.Round(100*time.Millisecond), r.CloseReason, ok, len(r.Tasks))
}

// A worker holds one Redis client: asynq's server, client and inspector,
// the run store, the limiter and its health endpoint share one pool, so
// every connection it opens carries its one client name.
func TestOneRedisClientPerWorker(t *testing.T) {
	ps := testenv.NewProcs(t)
	addr := testenv.RedisServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	env, _ := apmtelEnv(t, "APMTEL_REDIS_ADDR="+addr, "APMTEL_CONCURRENCY=8", "APMTEL_HTTP_ADDR=127.0.0.1:"+freePort(t))
	w := ps.Start("worker", env, "worker")
	if _, stderr, code := testenv.Exec(t, env, "run", "--wait", "--timeout", "2m"); code != 0 {
		t.Fatalf("run: %d %s", code, stderr)
	}
	name := fmt.Sprintf("apmtel-worker-%d", w.Cmd.Process.Pid)
	list, err := rdb.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	mine, others := 0, []string{}
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		switch {
		case strings.Contains(line, " name="+name+" "):
			mine++
		case strings.Contains(line, " cmd=client|list "):
			// this test's own connection
		default:
			others = append(others, line)
		}
	}
	if mine == 0 || len(others) != 0 {
		t.Errorf("%d connections named %s; %d others:\n%s", mine, name, len(others), strings.Join(others, "\n"))
	}
	fmt.Fprintf(os.Stderr, "MEASURE one client per worker: %d connections, all named %s\n", mine, name)
}

func freePort(t *testing.T) string {
	t.Helper()
	_, p, _ := net.SplitHostPort(testenv.FreeAddr(t))
	return p
}
