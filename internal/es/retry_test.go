package es

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/config"
)

// flaky answers the first len(statuses) requests with those statuses (and
// Retry-After headers), then 200.
func flaky(t *testing.T, p ClientParams, statuses []int, retryAfter []string) (*Client, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		i := int(n.Add(1)) - 1
		if i < len(statuses) {
			if i < len(retryAfter) && retryAfter[i] != "" {
				v := retryAfter[i]
				if v == "date+2s" { // an HTTP date, made when the answer is sent
					v = time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat)
				}
				w.Header().Set("Retry-After", v)
			}
			w.WriteHeader(statuses[i])
			_, _ = w.Write([]byte(`{"error":{"type":"es_rejected_execution_exception","reason":"rejected"},"status":429}`))
			return
		}
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(srv.Close)
	p.Cluster = config.Cluster{URLs: []string{srv.URL}}
	if p.RetryBase == 0 {
		p.RetryBase, p.RetryMax = 10*time.Millisecond, 40*time.Millisecond
	}
	c, err := NewClient(p)
	if err != nil {
		t.Fatal(err)
	}
	return c, &n
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name       string
		params     ClientParams
		statuses   []int
		retryAfter []string
		ctxTimeout time.Duration
		wantErr    string // "" = success
		wantCalls  int64
		minWait    time.Duration
	}{
		{name: "429 then 503 then ok", statuses: []int{429, 503}, wantCalls: 3},
		{name: "500 502 504 ok", statuses: []int{500, 502, 504}, wantCalls: 4},
		{name: "400 is final", statuses: []int{400}, wantErr: "400", wantCalls: 1},
		{name: "404 is final", statuses: []int{404}, wantErr: "404", wantCalls: 1},
		{name: "501 is final", statuses: []int{501}, wantErr: "501", wantCalls: 1},
		{name: "budget spent", params: ClientParams{MaxRetries: 2}, statuses: []int{503, 503, 503, 503}, wantErr: "after 3 attempts", wantCalls: 3},
		{name: "retries disabled", params: ClientParams{MaxRetries: -1}, statuses: []int{429}, wantErr: "429", wantCalls: 1},
		{name: "Retry-After seconds honoured", statuses: []int{429}, retryAfter: []string{"1"}, wantCalls: 2, minWait: time.Second},
		{name: "Retry-After date honoured", statuses: []int{503}, retryAfter: []string{"date+2s"}, wantCalls: 2, minWait: 500 * time.Millisecond},
		{name: "Retry-After beyond the deadline ends at once", statuses: []int{429}, retryAfter: []string{"30"}, ctxTimeout: 2 * time.Second, wantErr: "no time left to retry", wantCalls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, calls := flaky(t, tc.params, tc.statuses, tc.retryAfter)
			ctx := context.Background()
			if tc.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctxTimeout)
				defer cancel()
			}
			start := time.Now()
			b, err := c.Do(ctx, Search([]string{"a"}, map[string]any{}, 5*time.Second))
			el := time.Since(start)
			switch {
			case tc.wantErr == "" && (err != nil || string(b) != `{"ok":true}`):
				t.Fatalf("got %q, %v", b, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("want error %q, got %v", tc.wantErr, err)
			}
			if calls.Load() != tc.wantCalls {
				t.Errorf("%d attempts, want %d", calls.Load(), tc.wantCalls)
			}
			if el < tc.minWait {
				t.Errorf("returned after %s, before Retry-After %s", el, tc.minWait)
			}
			if tc.ctxTimeout > 0 && el > tc.ctxTimeout {
				t.Errorf("took %s, past the caller's deadline %s", el, tc.ctxTimeout)
			}
		})
	}
}

// Every attempt passes through the gate (retries count against the cap),
// and no slot is held while waiting between attempts.
func TestRetriesTakeTheGatePerAttempt(t *testing.T) {
	var taken, held atomic.Int64
	var heldAtRetry atomic.Bool
	gate := func(ctx context.Context) (context.Context, func(), error) {
		// Attempts are sequential: a slot still held when the next attempt
		// asks for one was held through the backoff wait.
		if held.Load() != 0 {
			heldAtRetry.Store(true)
		}
		taken.Add(1)
		held.Add(1)
		return ctx, func() { held.Add(-1) }, nil
	}
	c, calls := flaky(t, ClientParams{Gate: gate, RetryBase: 100 * time.Millisecond, RetryMax: 100 * time.Millisecond}, []int{429, 429}, nil)
	done := make(chan error, 1)
	go func() {
		_, err := c.Do(context.Background(), Search([]string{"a"}, map[string]any{}, 5*time.Second))
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if taken.Load() != 3 || held.Load() != 0 || calls.Load() != 3 {
		t.Errorf("gate taken %d times for %d attempts, %d still held", taken.Load(), calls.Load(), held.Load())
	}
	if heldAtRetry.Load() {
		t.Error("a slot was held during the backoff wait")
	}
}

// A request that ran into its own timeout is not sent again: the cluster had
// its time, a retry would only double the load.
func TestTimeoutIsNotRetried(t *testing.T) {
	var n atomic.Int64
	release := make(chan struct{})
	c := fakeES(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	c.retries = 3
	_, err := c.Do(context.Background(), Search([]string{"a"}, map[string]any{}, 100*time.Millisecond))
	if err == nil || n.Load() != 1 {
		t.Errorf("%d attempts, err %v", n.Load(), err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"": 0, "3": 3 * time.Second, "-1": 0, "junk": 0, "86400": maxRetryAfter,
		now.Add(5 * time.Second).Format(http.TimeFormat): 5 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):      0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}
