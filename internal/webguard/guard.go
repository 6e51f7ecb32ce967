// Package webguard protects apmtel's HTTP endpoints (the monitor with
// Asynqmon, health and metrics) from the browser on the operator's own
// machine: a web page can make that browser send requests to a loopback
// address (cross-site request forgery), and a hostile DNS name can be made
// to resolve to 127.0.0.1 (DNS rebinding). So:
//
//   - every request must name, in its Host header, the address the server is
//     bound to, a loopback name on its port, or a configured host name;
//   - a state-changing request (anything but GET, HEAD, OPTIONS) must come
//     from the same origin (Origin, else Referer), and is refused outright in
//     read-only mode;
//   - a token, when configured, is required (bearer or basic-auth password),
//     compared as fixed-length SHA-256 digests so that neither its content
//     nor its length leaks through timing; a refusal is counted and logged
//     (rate-limited, never the token), and a client that keeps failing is
//     answered 429 before its token is compared (auth.go);
//   - paths listed as public (health) answer without a token and say nothing
//     but "ok";
//   - every answer, refusals included, forbids being framed by another page
//     (clickjacking: a click inside a frame of the monitor carries the
//     monitor's own Origin, so the same-origin check alone cannot tell it
//     from the operator's), MIME sniffing, and a Referer to other sites
//     (Headers).
package webguard

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/rs/zerolog"
)

// Options configure a Guard.
type Options struct {
	// Addr is the address the server listens on (host:port, port resolved).
	Addr string
	// Hosts are further names the server may be reached by (a load
	// balancer's name); each may carry a port.
	Hosts []string
	// Token, when not empty, is required on every non-public path.
	Token string
	// ReadOnly refuses every state-changing request.
	ReadOnly bool
	// Public paths answer without a token (health checks).
	Public []string
	// Logger receives the failed authentications (rate-limited); the zero
	// Logger drops them.
	Logger zerolog.Logger
}

// Guard wraps h with the checks above.
func Guard(o Options, h http.Handler) http.Handler {
	var digest [32]byte
	if o.Token != "" {
		digest = sha256.Sum256([]byte(o.Token))
	}
	_, port, _ := net.SplitHostPort(o.Addr)
	allowed := map[string]bool{strings.ToLower(o.Addr): true}
	for _, n := range []string{"localhost", "127.0.0.1", "[::1]"} {
		allowed[n+":"+port] = true
	}
	for _, hst := range o.Hosts {
		hst = strings.ToLower(strings.TrimSpace(hst))
		if hst == "" {
			continue
		}
		allowed[hst] = true
		if !strings.Contains(hst, ":") {
			allowed[hst+":"+port] = true
		}
	}
	// The Host check defends a loopback server, which needs no token, from
	// DNS rebinding. A server bound elsewhere requires a token, which a
	// rebinding page cannot send, and is reached by names we cannot know
	// (pod IPs, service names) unless they are configured.
	checkHost := IsLoopback(o.Addr) || len(o.Hosts) > 0
	fails := newFailures(o.Logger)
	public := map[string]bool{}
	for _, p := range o.Public {
		public[p] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setHeaders(w.Header())
		if checkHost && !allowed[strings.ToLower(r.Host)] {
			http.Error(w, "unknown host (set APMTEL_MONITOR_HOSTS to allow it)", http.StatusMisdirectedRequest)
			return
		}
		if public[r.URL.Path] {
			h.ServeHTTP(w, r)
			return
		}
		if o.Token != "" {
			ip := clientOf(r)
			if wait, no := fails.throttled(ip); no {
				fails.failed(r, ip, reasonThrottled)
				w.Header().Set("Retry-After", retryAfter(wait))
				http.Error(w, "too many failed authentications: try again later", http.StatusTooManyRequests)
				return
			}
			if reason := tokenCheck(r, digest); reason != "" {
				fails.failed(r, ip, reason)
				w.Header().Set("WWW-Authenticate", `Basic realm="apmtel"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if o.ReadOnly {
				http.Error(w, "read-only (APMTEL_MONITOR_READ_ONLY): changes are refused", http.StatusForbidden)
				return
			}
			if !sameOrigin(r) {
				http.Error(w, "cross-origin request refused", http.StatusForbidden)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// securityHeaders are sent with every answer. The Referrer-Policy is
// same-origin, not no-referrer: under no-referrer a browser sends
// "Origin: null" on a same-origin POST, which sameOrigin must refuse.
var securityHeaders = [][2]string{
	{"Content-Security-Policy", "frame-ancestors 'none'"},
	{"X-Frame-Options", "DENY"},
	{"X-Content-Type-Options", "nosniff"},
	{"Referrer-Policy", "same-origin"},
}

func setHeaders(h http.Header) {
	for _, kv := range securityHeaders {
		h.Set(kv[0], kv[1])
	}
}

// Headers sets the security headers of Guard on every answer of h, for a
// handler in front of Guard (the health endpoints, which bypass it).
func Headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setHeaders(w.Header())
		h.ServeHTTP(w, r)
	})
}

// tokenCheck returns "" when r carries the token, else why not.
func tokenCheck(r *http.Request, want [32]byte) string {
	got := ""
	if v := r.Header.Get("Authorization"); strings.HasPrefix(v, "Bearer ") {
		got = strings.TrimPrefix(v, "Bearer ")
	}
	if _, pw, ok := r.BasicAuth(); ok {
		got = pw
	}
	if got == "" {
		return reasonMissing
	}
	d := sha256.Sum256([]byte(got))
	if subtle.ConstantTimeCompare(d[:], want[:]) != 1 {
		return reasonWrong
	}
	return ""
}

// sameOrigin reports whether a state-changing request comes from a page of
// this server: its Origin (or, without one, its Referer) has this Host.
func sameOrigin(r *http.Request) bool {
	src := r.Header.Get("Origin")
	if src == "" || src == "null" {
		src = r.Header.Get("Referer")
	}
	if src == "" {
		return false
	}
	u, err := url.Parse(src)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// RequireToken is the one exposure rule of every listener apmtel serves
// (the monitor, a process's health and metrics): off loopback, a token is
// required. setting names the address's variable, for the error.
func RequireToken(setting, addr, token string) error {
	if token == "" && !IsLoopback(addr) {
		return fmt.Errorf("APMTEL_MONITOR_TOKEN: required when %s (%s) is not a loopback address", setting, addr)
	}
	return nil
}

// IsLoopback reports whether addr (host:port) only listens on loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
