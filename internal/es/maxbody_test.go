package es

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/config"
)

// An answer over MaxBody fails once (no retry: it is permanent) with an
// error naming the bound and the setting, whether its length is announced
// or not; an answer at the bound is read whole.
func TestAnswerSizeBound(t *testing.T) {
	const limit = 1 << 20
	var requests int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		body := `{"a":"` + strings.Repeat("x", n-8) + `"}`
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		} else {
			w.(http.Flusher).Flush() // no length: chunked
		}
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	c, err := NewClient(ClientParams{Cluster: config.Cluster{URLs: []string{srv.URL}}, MaxBody: limit})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		n       int
		chunked string
		tooBig  bool
	}{
		{limit, "", false}, {limit, "1", false}, {limit + 1, "", true}, {limit + 1, "1", true}, {20 * limit, "1", true},
	} {
		requests = 0
		b, err := c.Do(context.Background(), Request{Method: "GET", Index: []string{"ix"}, Endpoint: "_search",
			Params: map[string][]string{"n": {strconv.Itoa(tc.n)}, "chunked": {tc.chunked}}, Timeout: 5 * time.Second})
		var tl *TooLargeError
		switch {
		case tc.tooBig && (!errors.As(err, &tl) || !IsPermanent(err) || requests != 1 ||
			!strings.Contains(err.Error(), "answer larger than 1 MiB (APMTEL_SEARCH_MAX_ANSWER_MB)")):
			t.Errorf("%d bytes (chunked %q): %v after %d requests, want one permanent TooLargeError", tc.n, tc.chunked, err, requests)
		case !tc.tooBig && (err != nil || len(b) != tc.n):
			t.Errorf("%d bytes (chunked %q): %d bytes, %v", tc.n, tc.chunked, len(b), err)
		}
	}
}
