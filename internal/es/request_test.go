package es

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/config"
)

func TestRequestValidate(t *testing.T) {
	tests := []struct {
		name string
		r    Request
		want string
	}{
		{"ok", Search([]string{"a"}, map[string]any{}, time.Second), ""},
		{"no timeout", Request{Index: []string{"a"}, Endpoint: "_search"}, "no timeout"},
		{"no index", Request{Endpoint: "_search", Timeout: time.Second}, "no index"},
		{"cluster wide", Request{ClusterWide: true, Timeout: time.Second}, ""},
		{"bad index", Request{Index: []string{"a/b"}, Timeout: time.Second}, "invalid index"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.r.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestPathAndTimeout(t *testing.T) {
	r := Search([]string{"traces-apm*,apm-*", "logs-apm*"}, map[string]any{"size": 0}, 90*time.Second)
	if got, want := r.Path(), "/traces-apm*,apm-*,logs-apm*/_search?allow_no_indices=true&ignore_unavailable=true"; got != want {
		t.Errorf("path %q, want %q", got, want)
	}
	if got := r.Body.(map[string]any)["timeout"]; got != "90s" {
		t.Errorf("body timeout %v", got)
	}
	for d, want := range map[time.Duration]string{5 * time.Minute: "5m", 1500 * time.Millisecond: "1500ms"} {
		if got := FormatTimeout(d); got != want {
			t.Errorf("FormatTimeout(%s) = %s, want %s", d, got, want)
		}
	}
}

func fakeES(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(ClientParams{Cluster: config.Cluster{URLs: []string{srv.URL}}, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientErrors(t *testing.T) {
	c := fakeES(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		_, _ = w.Write([]byte(`{"error":{"type":"parsing_exception","reason":"unknown query [x]"},"status":400}`))
	})
	_, err := c.Do(context.Background(), Search([]string{"a"}, map[string]any{}, time.Second))
	var e *Error
	if !errors.As(err, &e) || e.Status != 400 || e.Type != "parsing_exception" || !IsPermanent(err) {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), "unknown query [x]") {
		t.Errorf("error text %q lacks reason", err)
	}
}

func TestClientHonoursContext(t *testing.T) {
	release := make(chan struct{})
	c := fakeES(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	start := time.Now()
	_, err := c.Do(context.Background(), Search([]string{"a"}, map[string]any{}, 200*time.Millisecond))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline exceeded, got %v", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("timeout took %s", el)
	}
}

func TestInfo(t *testing.T) {
	c := fakeES(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			t.Errorf("path %s", r.URL.Path)
		}
		_, _ = w.Write([]byte(`{"cluster_name":"c1","cluster_uuid":"u1","version":{"number":"8.15.0"}}`))
	})
	info, err := Info(context.Background(), c, time.Second)
	if err != nil || info.ClusterUUID != "u1" || info.ClusterName != "c1" || info.Version.Number != "8.15.0" {
		t.Fatalf("info %+v err %v", info, err)
	}
}

func TestRequestTimeoutCause(t *testing.T) {
	err := fmt.Errorf("_search: %w", &RequestTimeoutError{Timeout: 2 * time.Second})
	if !IsRequestTimeout(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v: IsRequestTimeout %v, DeadlineExceeded %v", err, IsRequestTimeout(err), errors.Is(err, context.DeadlineExceeded))
	}
	if IsRequestTimeout(context.DeadlineExceeded) {
		t.Error("a caller's deadline read as the request's own timeout")
	}
	if got := err.Error(); got != "_search: request timed out after 2s" {
		t.Errorf("message %q", got)
	}
}
