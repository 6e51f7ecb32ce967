package webguard

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

// 2,000 wrong tokens from one client at full speed: 10 are compared and
// refused 401, the rest get 429 with Retry-After before any comparison; the
// right token from another client still passes; the client may try again
// after a second; every failure is counted; the log has a line or two, with
// the client and the count, never the token.
func TestFailedAuthenticationIsCountedLoggedAndSlowed(t *testing.T) {
	var logged bytes.Buffer
	now := time.Unix(1_800_000_000, 0)
	clock = func() time.Time { return now }
	defer func() { clock = time.Now }()
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("done")) })
	g := Guard(Options{Addr: "127.0.0.1:8080", Token: "right-token-0123456789", Logger: zerolog.New(&logged)}, ok)
	before := map[string]float64{}
	for _, r := range []string{reasonMissing, reasonWrong, reasonThrottled} {
		before[r] = testutil.ToFloat64(authFailures.WithLabelValues(r))
	}
	do := func(remote, token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "http://127.0.0.1:8080/metrics", nil)
		r.RemoteAddr = remote
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		return w
	}
	codes := map[int]int{}
	for i := range 2000 {
		tok := "guess-" + string(rune('a'+i%26)) + "-secret-guess"
		if i == 0 {
			tok = ""
		}
		w := do("192.0.2.7:5555", tok)
		codes[w.Code]++
		if w.Code == http.StatusTooManyRequests && w.Header().Get("Retry-After") != "1" {
			t.Fatalf("429 without Retry-After: %v", w.Header())
		}
	}
	if codes[401] != failBurst || codes[429] != 2000-failBurst {
		t.Errorf("codes %v, want %d × 401 then 429", codes, failBurst)
	}
	if w := do("192.0.2.7:5556", "right-token-0123456789"); w.Code != http.StatusTooManyRequests {
		t.Errorf("the throttled client's next request = %d, want 429 (no token compared)", w.Code)
	}
	if w := do("198.51.100.1:1", "right-token-0123456789"); w.Code != 200 {
		t.Errorf("another client with the token = %d, want 200", w.Code)
	}
	now = now.Add(failEvery)
	if w := do("192.0.2.7:5555", "right-token-0123456789"); w.Code != 200 {
		t.Errorf("after %s the client with the token = %d, want 200 (slowed, not banned)", failEvery, w.Code)
	}
	want := map[string]float64{reasonMissing: 1, reasonWrong: failBurst - 1, reasonThrottled: 2000 - failBurst + 1}
	for r, n := range want {
		if got := testutil.ToFloat64(authFailures.WithLabelValues(r)) - before[r]; got != n {
			t.Errorf("apmtel_auth_failures_total{reason=%q} grew by %v, want %v", r, got, n)
		}
	}
	lines := strings.Split(strings.TrimSpace(logged.String()), "\n")
	if len(lines) < 1 || len(lines) > 2 || !strings.Contains(lines[0], `"client":"192.0.2.7"`) || !strings.Contains(lines[0], "authentication failed") {
		t.Errorf("log: %d lines, want 1-2 naming the client:\n%s", len(lines), logged.String())
	}
	if strings.Contains(logged.String(), "guess") || strings.Contains(logged.String(), "right-token") {
		t.Errorf("a token in the log:\n%s", logged.String())
	}
}

// The table of clients stays bounded under many addresses.
func TestFailureTableIsBounded(t *testing.T) {
	f := newFailures(zerolog.Nop())
	clock := time.Unix(0, 0)
	f.now = func() time.Time { return clock }
	r := httptest.NewRequest("GET", "/", nil)
	for i := range 3 * maxClients {
		clock = clock.Add(failEvery * failBurst) // each earlier client's budget is whole again
		f.failed(r, fmt.Sprintf("10.0.%d.%d", i/256, i%256), reasonWrong)
	}
	if n := len(f.clients); n > maxClients {
		t.Errorf("%d clients kept, want at most %d", n, maxClients)
	}
}
