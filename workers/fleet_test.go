package workers_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/fleet"
	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/workers"
)

// authLog is a cluster that remembers the Authorization header of every request.
type authLog struct {
	mu   sync.Mutex
	seen []string
}

func (a *authLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.seen = append(a.seen, r.Header.Get("Authorization"))
	a.mu.Unlock()
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{}`))
}

func (a *authLog) last() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.seen) == 0 {
		return ""
	}
	return a.seen[len(a.seen)-1]
}

// Each cluster of a clusters file gets its own client with its own
// credentials, read from the secret file on use (a rotated key is sent at
// once); a changed entry gets a new client, a removed or disabled cluster's
// client is closed and its jobs are refused with ErrNotConfigured (its run
// store still given); Close leaves no client, connection or goroutine.
func TestFleetClustersFollowTheFile(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	srvA, srvB := &authLog{}, &authLog{}
	a, b := httptest.NewServer(srvA), httptest.NewServer(srvB)
	defer a.Close()
	defer b.Close()
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	dir := t.TempDir()
	keyA := filepath.Join(dir, "a.key")
	write := func(p, s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(keyA, "key-one")
	file := filepath.Join(dir, "clusters.yaml")
	write(file, fmt.Sprintf("clusters:\n  - name: a\n    urls: [%q]\n    api_key_file: %s\n  - name: b\n    urls: [%q]\n", a.URL, keyA, b.URL))
	w, err := fleet.NewWatcher(file, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.KeyPrefix = "fc"
	fc := workers.NewFleetClusters(cfg, rdb, w, nil, nil, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); fc.Run(ctx) }()

	ping := func(c workers.Cluster) {
		t.Helper()
		if _, err := c.Executor.Source.Do(context.Background(), es.Request{ClusterWide: true, Timeout: 5 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	ca, err := fc.Cluster("a")
	if err != nil {
		t.Fatal(err)
	}
	cb, err := fc.Cluster("b")
	if err != nil {
		t.Fatal(err)
	}
	if ca.Executor == cb.Executor || ca.Runs.Keys().Source != "a" || cb.Runs.Keys().Source != "b" {
		t.Fatal("clusters share a client or a key space")
	}
	ping(ca)
	ping(cb)
	if got := srvA.last(); got != "ApiKey key-one" {
		t.Errorf("a sent %q, want its key", got)
	}
	if got := srvB.last(); got != "" {
		t.Errorf("b sent %q, want no credentials (none configured)", got)
	}
	// Rotation: the next request carries the new key, same client.
	write(keyA, "key-two-rotated")
	ping(ca)
	if got := srvA.last(); got != "ApiKey key-two-rotated" {
		t.Errorf("after rotation a sent %q", got)
	}
	if again, _ := fc.Cluster("a"); again.Executor != ca.Executor {
		t.Error("a rotated key made a new client before any reload; the old one reads the file on use")
	}
	if fc.Open() != 2 {
		t.Errorf("open clients = %d, want 2", fc.Open())
	}
	if _, err := fc.Cluster("nope"); !errors.Is(err, workers.ErrNotConfigured) {
		t.Errorf("unknown cluster: %v, want ErrNotConfigured", err)
	}

	// Reload: b removed, a's cap changed.
	write(file, fmt.Sprintf("clusters:\n  - name: a\n    urls: [%q]\n    api_key_file: %s\n    search_concurrency: 2\n  - name: c\n    urls: [%q]\n    enabled: false\n", a.URL, keyA, b.URL))
	if changed, err := w.Reload(); err != nil || !changed {
		t.Fatalf("reload: %v %v", changed, err)
	}
	testenv.Eventually(t, 5*time.Second, "the clients of the removed and the changed cluster closed", func() bool { return fc.Open() == 0 })
	gone, err := fc.Cluster("b")
	if !errors.Is(err, workers.ErrNotConfigured) || gone.Runs == nil || gone.Runs.Keys().Source != "b" {
		t.Errorf("removed cluster: %v (store %v), want ErrNotConfigured with its store", err, gone.Runs != nil)
	}
	if _, err := fc.Cluster("c"); !errors.Is(err, workers.ErrNotConfigured) {
		t.Errorf("disabled cluster: %v, want ErrNotConfigured", err)
	}
	ca2, err := fc.Cluster("a")
	if err != nil {
		t.Fatal(err)
	}
	if ca2.Executor == ca.Executor {
		t.Error("a changed entry kept its old client")
	}
	ping(ca2)
	cancel()
	<-done
	fc.Close()
	if fc.Open() != 0 {
		t.Errorf("open clients after Close = %d", fc.Open())
	}
	if _, err := fc.Cluster("a"); err == nil {
		t.Error("a closed FleetClusters still hands out clients")
	}
	a.CloseClientConnections()
	b.CloseClientConnections()
}
