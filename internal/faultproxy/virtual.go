package faultproxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// VirtualStats count one virtual cluster's traffic (control requests excluded).
type VirtualStats struct {
	Requests    int `json:"requests"`
	InFlight    int `json:"in_flight"`
	MaxInFlight int `json:"max_in_flight"`
}

// VirtualCluster is one loopback port of a Fleet answering as a cluster of
// its own: GET / and _cluster/stats (and any other GET answer naming the
// cluster at its top level) carry its name and uuid instead of the engine's, and it counts the requests it has in flight, so a test can
// prove a per-cluster cap at the cluster's own door.
type VirtualCluster struct {
	// Name and UUID are the identity the cluster answers with.
	Name string
	UUID string

	// version, when set, replaces the engine's version number (SetVersion).
	version string

	upstream http.Handler
	ln       net.Listener
	srv      *http.Server

	mu    sync.Mutex
	stats VirtualStats
}

// SetVersion makes the cluster report version number (GET /'s
// version.number, _cluster/stats' nodes.versions) instead of the engine's,
// so that a test can tell every cluster's version apart. Call it before
// the cluster serves requests.
func (v *VirtualCluster) SetVersion(number string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.version = number
}

// URL is the cluster's base URL (http://127.0.0.1:port).
func (v *VirtualCluster) URL() string { return "http://" + v.ln.Addr().String() }

// Upstream is the handler behind the port (a *Proxy for its own faults, or
// a tape's Replayer).
func (v *VirtualCluster) Upstream() http.Handler { return v.upstream }

// Stats returns a copy of the counters.
func (v *VirtualCluster) Stats() VirtualStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.stats
}

// ResetStats zeroes the counters but the requests still in flight.
func (v *VirtualCluster) ResetStats() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.stats = VirtualStats{InFlight: v.stats.InFlight}
}

// virtualUUID derives a stable cluster uuid (22 characters of base64url, as
// Elasticsearch's) from the name.
func virtualUUID(name string) string {
	h := sha256.Sum256([]byte("apmtel-virtual-cluster:" + name))
	return base64.RawURLEncoding.EncodeToString(h[:16])
}

func (v *VirtualCluster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/__proxy/") {
		v.upstream.ServeHTTP(w, r)
		return
	}
	v.mu.Lock()
	v.stats.Requests++
	v.stats.InFlight++
	v.stats.MaxInFlight = max(v.stats.MaxInFlight, v.stats.InFlight)
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		v.stats.InFlight--
		v.mu.Unlock()
	}()
	if !identityPath(r) {
		v.upstream.ServeHTTP(w, r)
		return
	}
	// A compressed answer could not be rewritten: ask for a plain one.
	r.Header.Del("Accept-Encoding")
	buf := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
	v.upstream.ServeHTTP(buf, r)
	body := buf.body.Bytes()
	if buf.status == http.StatusOK && (bytes.Contains(body, []byte(`"cluster_name"`)) || bytes.Contains(body, []byte(`"cluster_uuid"`)) || bytes.Contains(body, []byte(`"version"`))) {
		v.mu.Lock()
		version := v.version
		v.mu.Unlock()
		if b, err := rewriteIdentity(body, v.Name, v.UUID, version); err == nil {
			body = b
		}
	}
	for k, vs := range buf.header {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(buf.status)
	_, _ = w.Write(body)
}

// identityPath reports whether r may be answered with the cluster's
// identity: any GET (GET /, _cluster/stats, _cluster/health, _nodes/usage
// all name the cluster); searches and writes are passed through as they
// stream.
func identityPath(r *http.Request) bool { return r.Method == http.MethodGet }

// rewriteIdentity replaces the top-level cluster_name and cluster_uuid of
// a JSON object, where present (filter_path may have left them out), and,
// with a version, version.number and nodes.versions; every other field is
// kept byte for byte.
func rewriteIdentity(body []byte, name, uuid, version string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	for field, v := range map[string]string{"cluster_name": name, "cluster_uuid": uuid} {
		if _, ok := m[field]; ok {
			b, _ := json.Marshal(v)
			m[field] = b
		}
	}
	if version != "" {
		v, _ := json.Marshal(version)
		setNested(m, "version", "number", v)
		setNested(m, "nodes", "versions", json.RawMessage("["+string(v)+"]"))
	}
	return json.Marshal(m)
}

// setNested sets m[outer][inner] = v when m[outer] is an object holding inner.
func setNested(m map[string]json.RawMessage, outer, inner string, v json.RawMessage) {
	raw, ok := m[outer]
	if !ok {
		return
	}
	var o map[string]json.RawMessage
	if json.Unmarshal(raw, &o) != nil {
		return
	}
	if _, ok := o[inner]; !ok {
		return
	}
	o[inner] = v
	if b, err := json.Marshal(o); err == nil {
		m[outer] = b
	}
}

// bufferedResponse collects an upstream answer so that it can be rewritten.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) WriteHeader(code int) {
	if !b.wrote {
		b.status, b.wrote = code, true
	}
}
func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.wrote = true
	return b.body.Write(p)
}

// Fleet is N virtual clusters in front of one engine, each on its own
// loopback port: a hundred or a thousand source clusters for tests and
// benchmarks at the cost of one engine (or, replaying a tape, of none).
type Fleet struct {
	clusters []*VirtualCluster
}

// NewFleet listens on n loopback ports. Cluster i is named
// "<prefix>-<i, 4 digits>" and answers through upstream(i): a fresh *Proxy
// per cluster gives each its own faults (POST /__proxy/fault on its port),
// one shared Replayer serves a recorded run to all of them.
func NewFleet(n int, prefix string, upstream func(i int) http.Handler) (*Fleet, error) {
	f := &Fleet{}
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("virtual cluster %d: %w", i, err)
		}
		name := fmt.Sprintf("%s-%04d", prefix, i)
		v := &VirtualCluster{Name: name, UUID: virtualUUID(name), upstream: upstream(i), ln: ln}
		v.srv = &http.Server{Handler: v, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = v.srv.Serve(ln) }()
		f.clusters = append(f.clusters, v)
	}
	return f, nil
}

// Clusters returns the virtual clusters in order.
func (f *Fleet) Clusters() []*VirtualCluster { return append([]*VirtualCluster(nil), f.clusters...) }

// Stats returns every cluster's counters, by name.
func (f *Fleet) Stats() map[string]VirtualStats {
	out := make(map[string]VirtualStats, len(f.clusters))
	for _, v := range f.clusters {
		out[v.Name] = v.Stats()
	}
	return out
}

// Close stops every port, ending requests in flight.
func (f *Fleet) Close() error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 0)
	defer cancel()
	for _, v := range f.clusters {
		if err := v.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			errs = append(errs, err)
		}
		_ = v.srv.Close()
	}
	return errors.Join(errs...)
}
