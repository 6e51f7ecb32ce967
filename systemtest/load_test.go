package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/scheduler"
)

// TestLoadHundredRuns starts 100 runs of every task back to back on 4
// workers: every run's payload holds every task exactly once, and Redis
// keeps only the history limit of runs.
func TestLoadHundredRuns(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("load test")
	}
	s := newStack(t)
	s.loadFixture(t)
	data := t.TempDir()
	env := s.env(t, testenv.ESURL(t), "APMTEL_HISTORY_LIMIT=50", "APMTEL_SEARCH_CONCURRENCY=8", "APMTEL_CONCURRENCY=4", "APMTEL_DATA_DIR="+data)
	for i := 1; i <= 4; i++ {
		s.Start(fmt.Sprint("worker-", i), env, "worker")
	}
	cfg := config.Default()
	cfg.HistoryLimit = 50
	sch := &scheduler.Scheduler{Config: cfg, Runs: s.st, Registry: telemetry.Default(), Enqueuer: s.cl, Logger: zerolog.Nop()}
	const runs = 100
	began := time.Now()
	for i := 0; i < runs; i++ {
		if _, err := sch.StartRun(context.Background(), fmt.Sprintf("load-%03d", i), "manual", run.KindFull, nil); err != nil {
			t.Fatal(err)
		}
	}
	payloads := filepath.Join(data, "payloads")
	s.Eventually(8*time.Minute, "100 payloads", func() bool {
		files, _ := filepath.Glob(filepath.Join(payloads, "*.json"))
		return len(files) == runs
	})
	took := time.Since(began)
	// tasks.<name>.took is the APM object's: the data tasks, not the
	// behavioural ones (their objects are other plugins').
	names := telemetry.Default().NamesOf(telemetry.PluginAPM)
	files, _ := filepath.Glob(filepath.Join(payloads, "*.json"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		var doc struct {
			StackStats struct {
				Kibana struct {
					Plugins struct {
						APM struct {
							Tasks map[string]json.RawMessage `json:"tasks"`
						} `json:"apm"`
					} `json:"plugins"`
				} `json:"kibana"`
			} `json:"stack_stats"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if got := len(doc.StackStats.Kibana.Plugins.APM.Tasks); got != len(names) {
			t.Errorf("%s has %d tasks, want %d", filepath.Base(f), got, len(names))
		}
	}
	ctx := context.Background()
	kept, _ := s.rdb.ZCard(ctx, s.st.Keys().Runs()).Result()
	if kept != 50 {
		t.Errorf("history holds %d runs, want 50", kept)
	}
	stale, _ := s.rdb.Keys(ctx, s.st.Keys().Run("load-000")+"*").Result()
	if len(stale) != 0 {
		t.Errorf("keys of a trimmed run remain: %v", stale)
	}
	// Memory of this test's database, by owner (the server is shared with other tests).
	memory := func(pattern string) (keys int, bytes int64) {
		all, _ := s.rdb.Keys(ctx, pattern).Result()
		for _, k := range all {
			n, _ := s.rdb.MemoryUsage(ctx, k).Result()
			bytes += n
		}
		return len(all), bytes
	}
	apmtelKeys, apmtelBytes := memory("apmtel:*")
	asynqKeys, asynqBytes := memory("asynq:*")
	// Per kept run: hash, results, attempts, snapshot, plugins; per source:
	// the runs index, latest pointer, last good values, counters and the
	// memory of a refused include_remotes (OpenSearch).
	if apmtelKeys > 5*50+5 {
		t.Errorf("%d apmtel keys, want at most %d (5 per kept run + 5)", apmtelKeys, 5*50+5)
	}
	fmt.Fprintf(os.Stderr, "MEASURE load: %d runs × %d tasks in %s; apmtel: %d keys, %d KiB; asynq (completed jobs kept 24h for dedup): %d keys, %d KiB\n",
		runs, len(names), took.Round(time.Second), apmtelKeys, apmtelBytes/1024, asynqKeys, asynqBytes/1024)
}
