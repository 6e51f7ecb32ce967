package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/runtest"
	"github.com/apmtel/apmtel/internal/testenv"
)

// The monitor mounts the console beside Asynqmon, behind the same token, and
// its root leads to the runs.
func TestMonitorServesConsole(t *testing.T) {
	rdb, db := testenv.RedisDB(t)
	if _, err := runtest.Seed(context.Background(), run.NewStore(rdb, keys.New(""), time.Hour, 10),
		runtest.Spec{ID: "r1", Tasks: []string{"agents", "cloud"}, Start: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.RedisAddr, cfg.RedisDB, cfg.MonitorAddr, cfg.MonitorToken = testenv.RedisAddr(t), db, "127.0.0.1:0", "console-token-0123456789"
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serveMonitor(ctx, cfg, testRuntime(t, cfg), zerolog.Nop(), ready) }()
	addr := <-ready
	defer func() { cancel(); <-done }()
	base := "http://" + addr
	if code, _ := fetch(t, base+"/runs/r1", ""); code != 401 {
		t.Errorf("console without token = %d, want 401", code)
	}
	if code, body := fetch(t, base+"/runs/r1", cfg.MonitorToken); code != 200 || !strings.Contains(body, `data-task="cloud"`) {
		t.Errorf("console run page = %d %.200q", code, body)
	}
	if code, body := fetch(t, base+"/", cfg.MonitorToken); code != 200 || !strings.Contains(body, `data-run="r1"`) {
		t.Errorf("monitor root = %d, want the runs page", code)
	}
	if code, _ := fetch(t, base+"/runz", cfg.MonitorToken); code != 404 {
		t.Errorf("unknown path = %d, want 404", code)
	}
	if code, body := fetch(t, base+"/monitoring/", cfg.MonitorToken); code != 200 || !strings.Contains(body, "<html") {
		t.Errorf("Asynqmon = %d %.100q, want its page", code, body)
	}
	if code, body := fetch(t, base+"/metrics", cfg.MonitorToken); code != 200 || !strings.Contains(body, `apmtel_runs_total{kind="full",status="ok",trigger="manual"} 1`) {
		t.Errorf("monitor /metrics = %d, missing the seeded run:\n%s", code, body)
	}
}

func TestConsoleRunURL(t *testing.T) {
	for _, tc := range []struct {
		addr  string
		hosts []string
		want  string
	}{
		{"127.0.0.1:8080", nil, "http://127.0.0.1:8080/runs/r1"},
		{"0.0.0.0:8080", nil, "http://localhost:8080/runs/r1"},
		{":8080", []string{"apmtel.example"}, "http://apmtel.example:8080/runs/r1"},
		{"0.0.0.0:8080", []string{"console.example:443"}, "http://console.example:443/runs/r1"},
		{"", nil, ""},
	} {
		cfg := config.Default()
		cfg.MonitorAddr, cfg.MonitorHosts = tc.addr, tc.hosts
		if got := consoleRunURL(cfg, "r1"); got != tc.want {
			t.Errorf("consoleRunURL(%q, %v) = %q, want %q", tc.addr, tc.hosts, got, tc.want)
		}
	}
}
