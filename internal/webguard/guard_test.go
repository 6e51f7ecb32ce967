package webguard

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestGuard(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("done")) })
	open := Guard(Options{Addr: "127.0.0.1:8080", Public: []string{"/healthz"}}, ok)
	tokened := Guard(Options{Addr: "10.0.0.5:8080", Token: "s3cret-token", Hosts: []string{"apmtel.example"}, Public: []string{"/healthz"}}, ok)
	pod := Guard(Options{Addr: "0.0.0.0:8080", Token: "s3cret-token"}, ok)
	ro := Guard(Options{Addr: "127.0.0.1:8080", ReadOnly: true}, ok)
	tests := []struct {
		name    string
		h       http.Handler
		method  string
		host    string
		path    string
		headers map[string]string
		want    int
	}{
		{"get on loopback", open, "GET", "127.0.0.1:8080", "/monitoring/", nil, 200},
		{"localhost alias", open, "GET", "localhost:8080", "/", nil, 200},
		{"DNS rebinding host", open, "GET", "evil.example:8080", "/", nil, 421},
		{"cross-origin text/plain POST", open, "POST", "127.0.0.1:8080", "/monitoring/api/queues/telemetry:pause",
			map[string]string{"Origin": "http://evil.example", "Content-Type": "text/plain"}, 403},
		{"POST without origin or referer", open, "POST", "127.0.0.1:8080", "/monitoring/api/x", nil, 403},
		{"same-origin POST", open, "POST", "127.0.0.1:8080", "/monitoring/api/x", map[string]string{"Origin": "http://127.0.0.1:8080"}, 200},
		{"same-origin by referer", open, "DELETE", "127.0.0.1:8080", "/x", map[string]string{"Referer": "http://127.0.0.1:8080/monitoring/"}, 200},
		{"read-only refuses same-origin POST", ro, "POST", "127.0.0.1:8080", "/x", map[string]string{"Origin": "http://127.0.0.1:8080"}, 403},
		{"read-only GET", ro, "GET", "127.0.0.1:8080", "/x", nil, 200},
		{"token missing", tokened, "GET", "10.0.0.5:8080", "/metrics", nil, 401},
		{"token wrong", tokened, "GET", "10.0.0.5:8080", "/metrics", map[string]string{"Authorization": "Bearer s3cret-tokeX"}, 401},
		{"token prefix", tokened, "GET", "10.0.0.5:8080", "/metrics", map[string]string{"Authorization": "Bearer s3cret"}, 401},
		{"token right", tokened, "GET", "10.0.0.5:8080", "/metrics", map[string]string{"Authorization": "Bearer s3cret-token"}, 200},
		{"configured host name", tokened, "GET", "apmtel.example", "/metrics", map[string]string{"Authorization": "Bearer s3cret-token"}, 200},
		{"unconfigured host name", tokened, "GET", "other.example", "/metrics", map[string]string{"Authorization": "Bearer s3cret-token"}, 421},
		{"wildcard bind: any host with the token", pod, "GET", "10.1.2.3:8080", "/metrics", map[string]string{"Authorization": "Bearer s3cret-token"}, 200},
		{"wildcard bind: token still required", pod, "GET", "10.1.2.3:8080", "/metrics", nil, 401},
		{"health without token", tokened, "GET", "10.0.0.5:8080", "/healthz", nil, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "http://"+tc.host+tc.path, strings.NewReader("x"))
			r.Host = tc.host
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			tc.h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Errorf("status %d, want %d: %s", w.Code, tc.want, w.Body.String())
			}
			if w.Code == 401 && strings.Contains(w.Body.String(), "s3cret") {
				t.Error("response echoes the token")
			}
			// Every answer, refusals too, forbids framing and sniffing.
			for _, kv := range securityHeaders {
				if got := w.Header().Get(kv[0]); got != kv[1] {
					t.Errorf("%s: %q, want %q", kv[0], got, kv[1])
				}
			}
		})
	}
	r := httptest.NewRequest("GET", "http://10.0.0.5:8080/metrics", nil)
	r.Host = "10.0.0.5:8080"
	r.SetBasicAuth("any", "s3cret-token")
	w := httptest.NewRecorder()
	tokened.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Errorf("basic-auth password: %d", w.Code)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:8080": true, "localhost:1": true, "[::1]:8080": true, "0.0.0.0:8080": false, ":8080": false, "10.0.0.1:80": false} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v", addr, got)
		}
	}
}
