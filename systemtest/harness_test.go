package systemtest

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/faultproxy"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/testenv"
)

// startProxy puts a fault proxy of the test's own in front of the engine.
func startProxy(t *testing.T) (*faultproxy.Proxy, string) {
	t.Helper()
	u, err := url.Parse(testenv.OpenSearchURL(t))
	if err != nil {
		t.Fatal(err)
	}
	p := faultproxy.New(u)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: p}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		p.SetFault(faultproxy.Fault{Mode: "none"})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return p, "http://" + ln.Addr().String()
}

// world is one test's own share of the services: the apmtel processes it
// runs and an index prefix no other test uses, so tests run in parallel.
type world struct {
	*testenv.Procs
	es     *es.Client
	prefix string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	c := testenv.ES(t)
	return &world{Procs: testenv.NewProcs(t), es: c, prefix: testenv.Prefix(t, c)}
}

// loadFixture writes a fresh fixture under the test's prefix.
func (w *world) loadFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(time.Now())
	f.load(t, w.es, w.prefix)
	return f
}

// index names an index of the test's own.
func (w *world) index(name string) string { return w.prefix + name }

// indexEnv points apmtel's index settings at the test's prefix.
func (w *world) indexEnv() []string {
	ix := testenv.Indices(w.prefix)
	return []string{
		"APMTEL_INDICES_TRANSACTION=" + ix.Transaction, "APMTEL_INDICES_SPAN=" + ix.Span, "APMTEL_INDICES_ERROR=" + ix.Error,
		"APMTEL_INDICES_METRIC=" + ix.Metric, "APMTEL_INDICES_ONBOARDING=" + ix.Onboarding,
		"APMTEL_INDICES_AGENT_CONFIGURATION=" + ix.AgentConfiguration, "APMTEL_INDICES_KIBANA=" + ix.Kibana,
	}
}

// stack is one test's world plus its Redis database, store and asynq inspector.
type stack struct {
	*world
	rdb  *redis.Client
	db   int
	addr string
	st   *run.Store
	insp *asynq.Inspector
	cl   *asynq.Client
}

func newStack(t *testing.T) *stack {
	t.Helper()
	rdb, db := testenv.RedisDB(t)
	return stackOn(t, rdb, testenv.RedisAddr(t), db)
}

func stackOn(t *testing.T, rdb *redis.Client, addr string, db int) *stack {
	opt := asynq.RedisClientOpt{Addr: addr, DB: db}
	s := &stack{world: newWorld(t), rdb: rdb, db: db, addr: addr, st: run.NewStore(rdb, keys.New(""), time.Hour, 50),
		insp: asynq.NewInspector(opt), cl: asynq.NewClient(opt)}
	t.Cleanup(func() { s.insp.Close(); s.cl.Close() })
	return s
}

// env builds a process environment for this stack, with source = sourceURL.
func (s *stack) env(t *testing.T, sourceURL string, extra ...string) []string {
	return testenv.Env(append(append([]string{
		"APMTEL_REDIS_ADDR=" + s.addr, "APMTEL_REDIS_DB=" + strconv.Itoa(s.db),
		"APMTEL_SOURCE_URL=" + sourceURL, "APMTEL_POLL_INTERVAL=100ms", "APMTEL_LOG_FORMAT=json",
		"APMTEL_DATA_DIR=" + t.TempDir(),
	}, s.indexEnv()...), extra...)...)
}

// startRun runs `apmtel run` and returns the run id.
func startRun(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, stderr, code := testenv.Exec(t, env, append([]string{"run"}, args...)...)
	if code != 0 {
		t.Fatalf("apmtel run: exit %d: %s", code, stderr)
	}
	return strings.TrimSpace(out)
}

// waitRun waits until the run satisfies cond.
func (s *stack) waitRun(t *testing.T, id string, timeout time.Duration, what string, cond func(run.Run) bool) run.Run {
	t.Helper()
	var r run.Run
	s.Eventually(timeout, what, func() bool {
		var err error
		r, err = s.st.Get(context.Background(), id)
		return err == nil && cond(r)
	})
	return r
}

func finalized(r run.Run) bool { return r.Status == run.StatusSealed }

func (s *stack) results(t *testing.T, id string) map[string]run.TaskRecord {
	t.Helper()
	res, err := s.st.Results(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// waitInFlight waits until the proxy holds at least n requests.
func (w *world) waitInFlight(t *testing.T, p *faultproxy.Proxy, n int) {
	t.Helper()
	w.Eventually(30*time.Second, "requests held at the proxy", func() bool { return p.Stats().InFlight >= n })
}

// ownRedis starts a redis-server of the test's own (AOF on, fsync always)
// and returns its address, data dir and a stop function.
func ownRedis(t *testing.T, dir string, port int) (addr string, stop func()) {
	t.Helper()
	if port == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	addr = "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	testenv.Eventually(t, 10*time.Second, "redis to start", func() bool { return c.Ping(context.Background()).Err() == nil })
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	t.Cleanup(stop)
	return addr, stop
}

// readyz is the status of a GET of url, 0 when nothing answers.
func readyz(url string) int {
	res, err := http.Get(url)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}
