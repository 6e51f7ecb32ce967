package faultproxy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault describes what to do with matching requests.
type Fault struct {
	// Mode is "none", "delay", "status", "reset", "hang" or "rewrite".
	Mode string `json:"mode"`
	// Match limits the fault to requests whose path or X-Opaque-Id contains
	// it ("" matches all).
	Match string `json:"match,omitempty"`
	// Status is the HTTP status of mode "status" (e.g. 429, 503).
	Status int `json:"status,omitempty"`
	// DelayMS is the delay of mode "delay" (the request then goes through).
	DelayMS int `json:"delay_ms,omitempty"`
	// Count limits the fault to the next Count matching requests (0: all).
	Count int `json:"count,omitempty"`
	// Rewrite is what mode "rewrite" does to the target's 2xx JSON answer:
	// "timed_out" sets timed_out, "shards_failed" marks all but one shard
	// failed, "no_aggregations" drops the aggregations (the partial answers
	// a loaded cluster gives), "pad" adds PadBytes of buckets in an extra
	// aggregation (a huge answer).
	Rewrite  string `json:"rewrite,omitempty"`
	PadBytes int    `json:"pad_bytes,omitempty"`
}

// Stats count the proxied traffic.
type Stats struct {
	Requests    int `json:"requests"`
	InFlight    int `json:"in_flight"`
	MaxInFlight int `json:"max_in_flight"`
	Faulted     int `json:"faulted"`
	// UpstreamMS sums the time the target took to answer (injected delays
	// excluded): the source cluster's own share of a run, for benchmarks.
	UpstreamMS float64 `json:"upstream_ms"`
	// MaxUpstreamMS is the slowest single answer.
	MaxUpstreamMS float64 `json:"max_upstream_ms"`
	// OpaqueIDs counts requests per X-Opaque-Id header.
	OpaqueIDs map[string]int `json:"opaque_ids,omitempty"`
}

// Proxy is the handler. Control endpoints live under /__proxy/.
type Proxy struct {
	rp *httputil.ReverseProxy

	mu    sync.Mutex
	fault Fault
	stats Stats
	// release unblocks hanging requests when the fault changes.
	release chan struct{}
}

// New returns a proxy to target.
func New(target *url.URL) *Proxy {
	p := &Proxy{rp: httputil.NewSingleHostReverseProxy(target), release: make(chan struct{})}
	p.rp.ModifyResponse = func(r *http.Response) error {
		r.Header.Set("X-Elastic-Product", "Elasticsearch")
		return nil
	}
	return p
}

// SetFault replaces the current fault (and releases hanging requests).
func (p *Proxy) SetFault(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault = f
	close(p.release)
	p.release = make(chan struct{})
}

// Stats returns a copy of the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.OpaqueIDs = map[string]int{}
	for k, v := range p.stats.OpaqueIDs {
		s.OpaqueIDs[k] = v
	}
	return s
}

// ResetStats zeroes the counters.
func (p *Proxy) ResetStats() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats = Stats{InFlight: p.stats.InFlight}
}

func (p *Proxy) take(path, opaque string) (Fault, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.fault
	if f.Mode == "" || f.Mode == "none" || !strings.Contains(path, f.Match) && !strings.Contains(opaque, f.Match) {
		return Fault{Mode: "none"}, p.release
	}
	if f.Count > 0 {
		p.fault.Count--
		if p.fault.Count == 0 {
			p.fault = Fault{Mode: "none"}
		}
	}
	p.stats.Faulted++
	return f, p.release
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/__proxy/") {
		p.control(w, r)
		return
	}
	p.mu.Lock()
	p.stats.Requests++
	p.stats.InFlight++
	p.stats.MaxInFlight = max(p.stats.MaxInFlight, p.stats.InFlight)
	if id := r.Header.Get("X-Opaque-Id"); id != "" {
		if p.stats.OpaqueIDs == nil {
			p.stats.OpaqueIDs = map[string]int{}
		}
		p.stats.OpaqueIDs[id]++
	}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.stats.InFlight--
		p.mu.Unlock()
	}()

	// Read the body first: Go's server only notices a client that hung up
	// (and cancels r.Context()) once the request body has been consumed.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	f, release := p.take(r.URL.Path, r.Header.Get("X-Opaque-Id"))
	switch f.Mode {
	case "delay":
		select {
		case <-time.After(time.Duration(f.DelayMS) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
	case "status":
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.Status)
		_, _ = w.Write([]byte(`{"error":{"type":"injected_fault","reason":"fault injected by the test proxy"},"status":` + itoa(f.Status) + `}`))
		return
	case "reset":
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				if tc, ok := conn.(interface{ SetLinger(int) error }); ok {
					_ = tc.SetLinger(0)
				}
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case "hang":
		select {
		case <-r.Context().Done():
			return
		case <-release:
		}
	}
	t0 := time.Now()
	if f.Mode == "rewrite" {
		rewrite(w, r, p.rp, f)
	} else {
		p.rp.ServeHTTP(w, r)
	}
	ms := float64(time.Since(t0).Microseconds()) / 1000
	p.mu.Lock()
	p.stats.UpstreamMS += ms
	p.stats.MaxUpstreamMS = max(p.stats.MaxUpstreamMS, ms)
	p.mu.Unlock()
}

// rewrite forwards r and changes the target's 2xx JSON answer as f says.
func rewrite(w http.ResponseWriter, r *http.Request, next http.Handler, f Fault) {
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	r.Header.Del("Accept-Encoding") // a plain answer, to rewrite
	next.ServeHTTP(rec, r)
	body := rec.body.Bytes()
	var answer map[string]any
	if rec.status/100 == 2 && json.Unmarshal(body, &answer) == nil {
		switch f.Rewrite {
		case "timed_out":
			answer["timed_out"] = true
		case "shards_failed":
			if sh, ok := answer["_shards"].(map[string]any); ok {
				total, _ := sh["total"].(float64)
				failed := max(total-1, 1)
				sh["failed"], sh["successful"] = failed, total-failed
				sh["failures"] = []any{map[string]any{"shard": 0, "index": "injected",
					"reason": map[string]any{"type": "injected_fault", "reason": "shard failure injected by the test proxy"}}}
			}
		case "no_aggregations":
			delete(answer, "aggregations")
		case "pad":
			aggs, _ := answer["aggregations"].(map[string]any)
			if aggs == nil {
				aggs = map[string]any{}
				answer["aggregations"] = aggs
			}
			aggs["injected_padding"] = padding(f.PadBytes)
		}
		body, _ = json.Marshal(answer)
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.status)
	_, _ = w.Write(body)
}

// padding is a terms aggregation of about n bytes.
func padding(n int) map[string]any {
	const each = 64 // bytes per bucket, about
	buckets := make([]any, 0, n/each+1)
	for i := 0; i*each < n; i++ {
		buckets = append(buckets, map[string]any{"key": "padding-bucket-" + itoa(i) + "-xxxxxxxxxxxxxxxx", "doc_count": i})
	}
	return map[string]any{"buckets": buckets}
}

// recorder holds an answer for rewrite.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(status int)      { r.status = status }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func (p *Proxy) control(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/__proxy/fault" && r.Method == http.MethodPost:
		var f Fault
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p.SetFault(f)
		w.WriteHeader(http.StatusNoContent)
	case r.URL.Path == "/__proxy/stats":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p.Stats())
	case r.URL.Path == "/__proxy/reset-stats" && r.Method == http.MethodPost:
		p.ResetStats()
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}
