package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scripts/bench-run.sh from start to table, tiny: its own services (or,
// when the suite's engine is known, that engine with a data set of its own
// under an index prefix), two workers, cap 4, delays 0 and 20 ms, one run
// each, no warming. The table must hold a row per delay with the four
// measurements, request counts, and the cap kept at the source; the
// breakdown must name the critical path and the source identity errand.
func TestBenchRunScriptSmoke(t *testing.T) {
	engine := os.Getenv("APMTEL_TEST_OPENSEARCH_URL")
	if testing.Short() && engine == "" {
		t.Skip("starts its own OpenSearch")
	}
	if _, err := exec.LookPath("java"); err != nil && engine == "" {
		t.Skip("java not installed (scripts/test.sh installs the services)")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "benchmarks.md")
	cmd := exec.Command("scripts/bench-run.sh")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "DOCS=3000", "W=2", "C=4", "DELAYS=0 20", "REPEAT=1", "WARM=0", "QUEUE_JOBS=50",
		"BENCH_OUT="+out, "APMTEL_STATE_DIR="+filepath.Join(t.TempDir(), "state"), "APMTEL_OPENSEARCH_HEAP=1g")
	if engine != "" {
		cmd.Env = append(cmd.Env, "BENCH_SOURCE_URL="+engine, "PREFIX=bench-smoke-"+strconv.Itoa(os.Getpid())+"-")
	}
	start := time.Now()
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bench-run.sh: %v\n%s", err, tail(string(b), 3000))
	}
	t.Logf("bench-run.sh took %s", time.Since(start).Round(time.Second))
	doc, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// | delay | serial | in-process | + envelope | distributed | ratio | ratio | requests ×4 | max in flight ×4 | …
	rows := regexp.MustCompile(`(?m)^\| (\d+) ms \| ([0-9.]+) s \| ([0-9.]+) s \| ([0-9.]+) s \| ([0-9.]+) s \| [0-9.]+× \| [0-9.]+× \| `+
		`\d+ / \d+ / \d+ / (\d+) \| (\d+)/\d+/\d+/(\d+) \|.*$`).FindAllStringSubmatch(string(doc), -1)
	if len(rows) != 2 || rows[0][1] != "0" || rows[1][1] != "20" {
		t.Fatalf("want a row for 0 and 20 ms, got %d rows:\n%s", len(rows), doc)
	}
	for _, r := range rows {
		req, _ := strconv.Atoi(r[6])
		serialMax, _ := strconv.Atoi(r[7])
		distMax, _ := strconv.Atoi(r[8])
		if req < 50 || serialMax != 1 || distMax < 1 || distMax > 4 {
			t.Errorf("delay %s ms: %d requests, max in flight serial %d, distributed %d (cap 4)", r[1], req, serialMax, distMax)
		}
		if strings.Contains(r[0], "failed") {
			t.Errorf("delay %s ms: %s", r[1], r[0])
		}
	}
	for _, want := range []string{"critical path through `", "| " + "wait for a job slot" + " |", "Errand `source_identity`: ok"} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("no breakdown line %q:\n%s", want, doc)
		}
	}
	if !regexp.MustCompile(`BenchmarkQueueOverhead\S*\s+50\s`).Match(doc) {
		t.Errorf("no queue overhead line for 50 jobs:\n%s", doc)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
