package systemtest

import (
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/apmtel/apmtel/internal/faultproxy"
	"github.com/apmtel/apmtel/internal/testenv"
)

// BenchmarkWorkerPeakRSSLargeAnswer measures a worker process's peak RSS
// (VmHWM) while one task's search answer is padded to 50 MB by the fault
// proxy (an extra terms aggregation of ~800,000 buckets), against its peak
// before the run. APMTEL_SEARCH_MAX_ANSWER_MB from the benchmark's
// environment (BENCH_MAX_ANSWER_MB) shows the bound at work. Run:
// go test -run '^$' -bench WorkerPeakRSS -benchtime 1x ./systemtest
func BenchmarkWorkerPeakRSSLargeAnswer(b *testing.B) {
	_, db := testenv.RedisDB(b)
	u, err := url.Parse(testenv.OpenSearchURL(b))
	if err != nil {
		b.Fatal(err)
	}
	p := faultproxy.New(u)
	srv := httptest.NewServer(p)
	defer srv.Close()
	env := testenv.Env("APMTEL_REDIS_ADDR="+testenv.RedisAddr(b), "APMTEL_REDIS_DB="+strconv.Itoa(db),
		"APMTEL_SOURCE_URL="+srv.URL, "APMTEL_POLL_INTERVAL=100ms", "APMTEL_DATA_DIR="+b.TempDir(), "APMTEL_MAX_RETRY=0")
	if mb := os.Getenv("BENCH_MAX_ANSWER_MB"); mb != "" {
		env = append(env, "APMTEL_SEARCH_MAX_ANSWER_MB="+mb)
	}
	w := testenv.NewProcs(b).Start("worker", env, "worker")
	if _, stderr, code := testenv.Exec(b, env, "run", "--task", "cloud", "--wait"); code != 0 {
		b.Fatalf("warm-up run: exit %d: %s", code, stderr)
	}
	idle := peakRSS(b, w.Cmd.Process.Pid)
	const size = 50 << 20
	p.SetFault(faultproxy.Fault{Mode: "rewrite", Rewrite: "pad", PadBytes: size, Match: "task=cloud"})
	b.ResetTimer()
	out, stderr, code := testenv.Exec(b, env, "run", "--task", "cloud", "--wait")
	b.StopTimer()
	peak := peakRSS(b, w.Cmd.Process.Pid)
	b.ReportMetric(float64(idle)/(1<<20), "idle-peak-MiB")
	b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
	b.ReportMetric(float64(peak-idle)/size, "growth/answer")
	b.Logf("run: exit %d\n%s%s", code, out, stderr)
}

// peakRSS is a process's peak resident set (VmHWM) in bytes.
func peakRSS(b *testing.B, pid int) int64 {
	s, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(s), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM")
	return 0
}
