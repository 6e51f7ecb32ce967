package systemtest

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/testenv"
)

// Wrong tokens against a real monitor: after 10 the client is answered 429
// with Retry-After; the monitor logs the failures (a line or two, never a
// token) and counts them in apmtel_auth_failures_total.
func TestMonitorSlowsFailedAuthentication(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	monAddr := testenv.FreeAddr(t)
	const token = "monitor-token-for-the-auth-test-0123"
	env := s.env(t, testenv.ESURL(t), "APMTEL_MONITOR_ADDR="+monAddr, "APMTEL_MONITOR_TOKEN="+token)
	mon := s.Start("monitor", env, "monitor")
	get := func(tok string) *http.Response {
		req, _ := http.NewRequest("GET", "http://"+monAddr+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil
		}
		return res
	}
	s.Eventually(20*time.Second, "the monitor", func() bool {
		res := get(token)
		if res != nil {
			res.Body.Close()
		}
		return res != nil && res.StatusCode == 200
	})
	codes := map[int]int{}
	for range 200 {
		res := get("wrong-guess-of-the-monitor-token")
		if res == nil {
			t.Fatal("monitor unreachable")
		}
		res.Body.Close()
		codes[res.StatusCode]++
	}
	if codes[401] < 10 || codes[401] > 12 || codes[429] < 188 {
		t.Errorf("200 wrong tokens: %v, want 10 (±2 refilled) × 401, the rest 429", codes)
	}
	var body string
	s.Eventually(5*time.Second, "the throttle to let the right token in", func() bool {
		res := get(token)
		if res == nil {
			return false
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		body = string(b)
		return res.StatusCode == 200
	})
	if !strings.Contains(body, `apmtel_auth_failures_total{reason="throttled"}`) || !strings.Contains(body, `apmtel_auth_failures_total{reason="wrong"}`) {
		t.Errorf("/metrics lacks apmtel_auth_failures_total:\n%s", body)
	}
	out := mon.Output()
	if n := strings.Count(out, "authentication failed"); n < 1 || n > 2 {
		t.Errorf("%d log lines of failed authentication, want 1-2:\n%s", n, out)
	}
	if strings.Contains(out, "wrong-guess") || strings.Contains(out, token) {
		t.Errorf("a token in the monitor's log:\n%s", out)
	}
}
