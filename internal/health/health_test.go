package health

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/testenv"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestRedisDown(t *testing.T) {
	addr := closedAddr(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer rdb.Close()
	insp := asynq.NewInspectorFromRedisClient(rdb)
	h := New(zerolog.Nop(), 2*time.Second, Redis(rdb), Workers(insp))

	code, body := get(t, h, LivePath)
	if code != 200 || body != "ok\n" {
		t.Errorf("%s with Redis down = %d %q, want 200 \"ok\\n\"", LivePath, code, body)
	}
	code, body = get(t, h, ReadyPath)
	if code != 503 || body != "not ready: redis unreachable; no worker server connected\n" {
		t.Errorf("%s with Redis down = %d %q", ReadyPath, code, body)
	}
	if strings.Contains(body, addr) || strings.Contains(body, "127.0.0.1") {
		t.Errorf("%s reveals the Redis address: %q", ReadyPath, body)
	}
}

func TestReadyWithWorker(t *testing.T) {
	rdb, db := testenv.RedisDB(t)
	insp := asynq.NewInspectorFromRedisClient(rdb)
	h := New(zerolog.Nop(), 2*time.Second, Redis(rdb), Workers(insp))

	code, body := get(t, h, ReadyPath)
	if code != 503 || body != "not ready: no worker server connected\n" {
		t.Fatalf("%s before any worker = %d %q", ReadyPath, code, body)
	}

	srv := asynq.NewServer(asynq.RedisClientOpt{Addr: testenv.RedisAddr(t), DB: db},
		asynq.Config{Concurrency: 1, LogLevel: asynq.FatalLevel})
	if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })); err != nil {
		t.Fatal(err)
	}
	// The heartbeater writes the server's state right at start, but in its
	// own goroutine.
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body = get(t, h, ReadyPath)
		if code == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code != 200 || body != "ready\n" {
		t.Errorf("%s with a worker = %d %q, want 200 \"ready\\n\"", ReadyPath, code, body)
	}

	srv.Shutdown()
	code, body = get(t, h, ReadyPath)
	if code != 503 || !strings.Contains(body, "no worker server connected") {
		t.Errorf("%s after the worker shut down = %d %q", ReadyPath, code, body)
	}
}

func TestFlag(t *testing.T) {
	var f Flag
	h := New(zerolog.Nop(), time.Second, f.Check("server", "worker server not running"))
	if code, body := get(t, h, ReadyPath); code != 503 || body != "not ready: worker server not running\n" {
		t.Errorf("flag down: %d %q", code, body)
	}
	f.Set(true)
	if code, body := get(t, h, ReadyPath); code != 200 || body != "ready\n" {
		t.Errorf("flag up: %d %q", code, body)
	}
}

func TestPublicBypassesToken(t *testing.T) {
	locked := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "unauthorized", http.StatusUnauthorized) })
	var f Flag
	f.Set(true)
	h := Public(New(zerolog.Nop(), time.Second, f.Check("x", "x down")), locked)
	for path, want := range map[string]int{LivePath: 200, ReadyPath: 200, "/metrics": 401, "/monitoring/": 401, "/healthz/x": 401} {
		if code, _ := get(t, h, path); code != want {
			t.Errorf("GET %s = %d, want %d", path, code, want)
		}
	}
}

func TestDefaultURL(t *testing.T) {
	tests := []struct{ http, monitor, want string }{
		{"", "127.0.0.1:8080", "http://127.0.0.1:8080/readyz"},
		{"0.0.0.0:8081", "127.0.0.1:8080", "http://127.0.0.1:8081/readyz"},
		{":8081", "127.0.0.1:8080", "http://127.0.0.1:8081/readyz"},
		{"[::]:8081", "", "http://[::1]:8081/readyz"},
		{"", "0.0.0.0:8080", "http://127.0.0.1:8080/readyz"},
		{"10.1.2.3:9000", "", "http://10.1.2.3:9000/readyz"},
		{"localhost:9000", "", "http://localhost:9000/readyz"},
	}
	for _, tt := range tests {
		if got := DefaultURL(tt.http, tt.monitor); got != tt.want {
			t.Errorf("DefaultURL(%q, %q) = %q, want %q", tt.http, tt.monitor, got, tt.want)
		}
	}
}

func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			io.WriteString(w, "ready\n")
		case "/down":
			w.WriteHeader(503)
			io.WriteString(w, "not ready: redis unreachable\nsecond line\n")
		default:
			w.WriteHeader(500)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	c := &http.Client{Timeout: 2 * time.Second}
	if err := Probe(ctx, c, srv.URL+"/ok"); err != nil {
		t.Errorf("2xx: %v", err)
	}
	tests := []struct{ url, want string }{
		{srv.URL + "/down", "GET " + srv.URL + "/down: 503 Service Unavailable: not ready: redis unreachable"},
		{srv.URL + "/empty", "GET " + srv.URL + "/empty: 500 Internal Server Error"},
		{"http://" + closedAddr(t) + "/readyz", "connection refused"},
		{"::bad", "bad URL"},
	}
	for _, tt := range tests {
		err := Probe(ctx, c, tt.url)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Probe(%s) = %v, want one line containing %q", tt.url, err, tt.want)
		}
	}
}
