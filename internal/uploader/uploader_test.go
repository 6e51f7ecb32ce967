package uploader

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/google/go-cmp/cmp"

	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/run"
)

// fakeES answers requests by path; unknown paths are a 404.
type fakeES struct {
	answers map[string]func(r es.Request) (string, error)
	// Describe sends its requests at once: paths is guarded by mu.
	mu    sync.Mutex
	paths []string
}

func (f *fakeES) Do(_ context.Context, r es.Request) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.paths = append(f.paths, r.Path())
	f.mu.Unlock()
	key := "/" + r.Endpoint
	if len(r.Index) > 0 {
		key = "/" + strings.Join(r.Index, ",") + "/" + r.Endpoint
	}
	a, ok := f.answers[key]
	if !ok {
		return nil, &es.Error{Status: 404, Type: "not_found", Reason: key}
	}
	s, err := a(r)
	return []byte(s), err
}

func body(s string) func(es.Request) (string, error) {
	return func(es.Request) (string, error) { return s, nil }
}

// An Elasticsearch 8 cluster with x-pack and a Kibana 9.2 (responses after
// Elasticsearch's documentation of each API, trimmed).
func elasticsearch() *fakeES {
	return &fakeES{answers: map[string]func(es.Request) (string, error){
		"/": body(`{"name":"n1","cluster_name":"prod","cluster_uuid":"u1","version":{"number":"8.19.2"}}`),
		"/_cluster/stats": body(`{"_nodes":{"total":2,"successful":2,"failed":0},"cluster_name":"prod","cluster_uuid":"u1","timestamp":1764590400000,"status":"green",
			"indices":{"count":12,"docs":{"count":3400}},"nodes":{"count":{"total":2,"data":2},"versions":["8.19.2"]}}`),
		"/_nodes/usage": body(`{"_nodes":{"total":2},"cluster_name":"prod","nodes":{"nB":{"timestamp":1,"since":0,"rest_actions":{"main_action":3}},"nA":{"timestamp":1,"since":0,"rest_actions":{}}}}`),
		"/_license": body(`{"license":{"status":"active","uid":"893361dc","type":"platinum","issue_date":"2018-10-20T22:05:12.332Z","issue_date_in_millis":1540073112332,
			"expiry_date":"2027-11-20T22:05:12.332Z","expiry_date_in_millis":1826839512332,"max_nodes":10,"max_resource_units":null,"issued_to":"prod","issuer":"elasticsearch","start_date_in_millis":1540073112332}}`),
		"/.kibana*/_search": func(r es.Request) (string, error) {
			if strings.Contains(mustJSON(r.Body), `"config"`) {
				return `{"_shards":{"total":1},"hits":{"hits":[{"_id":"config:8.19.0"},{"_id":"config:9.2.0-SNAPSHOT"},{"_id":"config:9.1.4"},{"_id":"config-global:9.2.0-SNAPSHOT"}]}}`, nil
			}
			return `{"_shards":{"total":1},"hits":{"hits":[]},"aggregations":{"types":{"buckets":[{"key":"dashboard","doc_count":4},{"key":"index-pattern","doc_count":2}]}}}`, nil
		},
	}}
}

// OpenSearch: include_remotes and _license are unknown (answers copied
// from the test cluster), no Kibana saved objects.
func opensearch() *fakeES {
	f := elasticsearch()
	f.answers["/_cluster/stats"] = func(r es.Request) (string, error) {
		if r.Params.Has("include_remotes") {
			return "", &es.Error{Status: 400, Type: "illegal_argument_exception", Reason: "request [/_cluster/stats] contains unrecognized parameter: [include_remotes]"}
		}
		return `{"_nodes":{"total":1},"cluster_name":"os","cluster_uuid":"u2","status":"green","nodes":{"count":{"total":1}}}`, nil
	}
	f.answers["/_license"] = func(es.Request) (string, error) {
		return "", &es.Error{Status: 400, Type: "invalid_index_name_exception", Reason: "Invalid index name [_license], must not start with '_'."}
	}
	f.answers["/.kibana*/_search"] = body(`{"_shards":{"total":0},"hits":{"hits":[]}}`)
	return f
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestDescribe(t *testing.T) {
	f := elasticsearch()
	src, err := Describer{KibanaIndex: ".kibana*", KibanaVersion: "9.0.0"}.Describe(context.Background(), f, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var stats map[string]any
	_ = json.Unmarshal(src.ClusterStats, &stats)
	if _, ok := stats["_nodes"]; ok {
		t.Error("cluster_stats keeps _nodes (Kibana drops it)")
	}
	if _, ok := stats["cluster_name"]; ok {
		t.Error("cluster_stats keeps cluster_name (Kibana drops it)")
	}
	usage := mustJSON(stats["nodes"].(map[string]any)["usage"])
	if usage != `{"nodes":[{"node_id":"nA","rest_actions":{},"since":0,"timestamp":1},{"node_id":"nB","rest_actions":{"main_action":3},"since":0,"timestamp":1}]}` {
		t.Errorf("nodes.usage = %s", usage)
	}
	if !strings.Contains(string(src.License), `"type":"platinum"`) {
		t.Errorf("license %s", src.License)
	}
	// The saved objects win over the configured version; the highest config id is the running Kibana.
	if src.Kibana == nil || src.Kibana.Version != "9.2.0-SNAPSHOT" || src.Kibana.VersionFrom != "saved_objects" ||
		src.Kibana.SavedObjects["dashboard"] != 4 || src.Kibana.SavedObjects["index_pattern"] != 2 || src.Kibana.SavedObjects["timelion_sheet"] != 0 {
		t.Errorf("kibana facts %+v", src.Kibana)
	}
	if len(src.Missing) != 0 {
		t.Errorf("missing %q", src.Missing)
	}
	// Sent at once, so in any order: compare them sorted.
	sort.Strings(f.paths)
	if got := strings.Join(f.paths, " "); got != "/ /.kibana*/_search?allow_no_indices=true&expand_wildcards=open%2Chidden&ignore_unavailable=true "+
		"/.kibana*/_search?allow_no_indices=true&expand_wildcards=open%2Chidden&ignore_unavailable=true "+
		"/_cluster/stats?include_remotes=true&timeout=60s /_license?local=true /_nodes/usage?timeout=30s" {
		t.Errorf("requests %s", got)
	}
	// Stored with the run as JSON and read back unchanged.
	b, err := json.Marshal(src)
	if err != nil {
		t.Fatal(err)
	}
	var back Source
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	// Raw JSON members compare by value: encoding compacts them.
	byValue := cmp.Transformer("decode", func(r json.RawMessage) any {
		var v any
		if err := json.Unmarshal(r, &v); err != nil {
			return string(r)
		}
		return v
	})
	if d := cmp.Diff(src, back, byValue); d != "" {
		t.Errorf("Source does not round-trip (-stored +read back):\n%s", d)
	}
}

func TestDescribeOpenSearch(t *testing.T) {
	src, err := Describer{KibanaIndex: ".kibana*", KibanaVersion: "9.2.1"}.Describe(context.Background(), opensearch(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if src.License != nil {
		t.Errorf("license %s, want none", src.License)
	}
	if !strings.Contains(string(src.ClusterStats), `"nodes":{"count":{"total":1}`) {
		t.Errorf("cluster stats %s", src.ClusterStats)
	}
	if src.Kibana == nil || src.Kibana.Version != "9.2.1" || src.Kibana.VersionFrom != "config" {
		t.Errorf("kibana %+v", src.Kibana)
	}
	if len(src.Missing) != 2 || !strings.HasPrefix(src.Missing[0], "license: ") || !strings.Contains(src.Missing[1], "no saved-object index") {
		t.Errorf("missing %q", src.Missing)
	}
	// Without a configured version nothing is invented.
	src, _ = Describer{KibanaIndex: ".kibana*"}.Describe(context.Background(), opensearch(), time.Minute)
	if src.Kibana != nil || !strings.Contains(strings.Join(src.Missing, "|"), "kibana version") {
		t.Errorf("kibana %+v missing %q", src.Kibana, src.Missing)
	}
}

func TestDescribeFailsOnTransientErrors(t *testing.T) {
	for _, path := range []string{"/", "/_cluster/stats", "/_nodes/usage", "/_license"} {
		f := elasticsearch()
		f.answers[path] = func(es.Request) (string, error) { return "", &es.Error{Status: 503, Reason: "down"} }
		if _, err := (Describer{KibanaIndex: ".kibana*"}).Describe(context.Background(), f, time.Minute); err == nil {
			t.Errorf("%s 503: Describe succeeded", path)
		}
	}
	// Unreadable saved objects (say a 403) are only missing.
	f := elasticsearch()
	f.answers["/.kibana*/_search"] = func(es.Request) (string, error) { return "", &es.Error{Status: 403, Reason: "no privilege"} }
	src, err := Describer{KibanaIndex: ".kibana*"}.Describe(context.Background(), f, time.Minute)
	if err != nil || src.Kibana != nil || !strings.Contains(strings.Join(src.Missing, "|"), "403") {
		t.Errorf("403 on saved objects: %v %+v %q", err, src.Kibana, src.Missing)
	}
}

func testSource(t *testing.T) Source {
	src, err := Describer{KibanaIndex: ".kibana*"}.Describe(context.Background(), elasticsearch(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestDocument(t *testing.T) {
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	fetched := time.Date(2026, 11, 26, 13, 30, 0, 250e6, time.FixedZone("+1", 3600))
	env, err := Document(testSource(t), at, fetched, json.RawMessage(`{"cloud":{"provider":["aws"]}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	_ = json.Unmarshal([]byte(mustJSON(env)), &doc)
	keys := []string{}
	for k := range doc {
		keys = append(keys, k)
	}
	for _, k := range []string{"cluster_uuid", "cluster_name", "timestamp", "version", "cluster_stats", "license", "collection", "collectionSource", "cacheDetails", "stack_stats"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("envelope lacks %s (has %v)", k, keys)
		}
	}
	if doc["timestamp"] != "2026-11-26T12:00:00.000Z" || doc["collection"] != "local" || doc["collectionSource"] != "apmtel" || doc["version"] != "8.19.2" {
		t.Errorf("envelope %s", mustJSON(doc))
	}
	// updatedAt is the collection time, fetchedAt the time the document is handed out.
	if cd, _ := doc["cacheDetails"].(map[string]any); cd["updatedAt"] != "2026-11-26T12:00:00.000Z" || cd["fetchedAt"] != "2026-11-26T12:30:00.250Z" {
		t.Errorf("cacheDetails %v", cd)
	}
	kb := mustJSON(doc["stack_stats"].(map[string]any)["kibana"])
	want := `{"count":1,"dashboard":{"total":4},"graph_workspace":{"total":0},"index_pattern":{"total":2},"indices":1,` +
		`"plugins":{"apm":{"cloud":{"provider":["aws"]}}},"search":{"total":0},"timelion_sheet":{"total":0},` +
		`"versions":[{"count":1,"version":"9.2.0"}],"visualization":{"total":0}}`
	if kb != want {
		t.Errorf("stack_stats.kibana\n got  %s\n want %s", kb, want)
	}
	// Later collectors go beside apm.
	if err := env.AddPlugin("application_usage", json.RawMessage(`{"apm":{"clicks_total":3}}`)); err != nil {
		t.Fatal(err)
	}
	if len(env.StackStats.Kibana.Plugins) != 2 || env.AddPlugin("x", json.RawMessage(`{`)) == nil {
		t.Error("AddPlugin")
	}
	// Bad input is refused and names the problem.
	if _, err := Document(testSource(t), at, at, json.RawMessage(`{broken`), nil); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("invalid JSON: %v", err)
	}
	if _, err := Document(Source{}, at, at, json.RawMessage(`{}`), nil); err == nil {
		t.Error("envelope without cluster_uuid accepted")
	}
	// No license and no Kibana facts: both left out, as Kibana leaves out an absent license.
	env, _ = Document(Source{ClusterUUID: "u", Version: "2.19.1"}, at, at, json.RawMessage(`{}`), nil)
	if s := mustJSON(env); strings.Contains(s, `"license"`) || strings.Contains(s, `"versions"`) || strings.Contains(s, `"dashboard"`) {
		t.Errorf("absent values must be left out: %s", s)
	}
}

func TestFileSink(t *testing.T) {
	env, err := Document(testSource(t), time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), time.Now(), json.RawMessage(`{}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sink := FileSink{Dir: dir}
	d, err := sink.Put(context.Background(), DocID("u1", "sched-1"), env)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "u1_sched-1.json"); d.Where != want || sink.Target(DocID("u1", "sched-1")) != want || d.State != run.UploadWritten {
		t.Errorf("put %+v, target %s, want %s written", d, sink.Target(DocID("u1", "sched-1")), want)
	}
	b, _ := os.ReadFile(d.Where)
	if enc, _ := env.Encode(); string(b) != string(enc) {
		t.Errorf("the file is not the document's Encode:\n%s\n%s", b, enc)
	}
	if !strings.Contains(string(b), `"collectionSource": "apmtel"`) {
		t.Errorf("file %s", b)
	}
}

// The channel sink against a local receiver that holds the private key:
// it checks Kibana's headers, decrypts the JWE and compares the document.
func TestChannelSink(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	jwks := mustJSON(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &other.PublicKey, KeyID: "kibana_dev1", Algorithm: string(jose.RSA_OAEP), Use: "enc"},
		{Key: &priv.PublicKey, KeyID: "kibana1", Algorithm: string(jose.RSA_OAEP), Use: "enc"},
	}})
	type received struct {
		path, ctype, version, cluster, encoding, kid string
		doc                                          map[string]any
		err                                          error
	}
	got := make(chan received, 1)
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc := received{path: r.Method + " " + r.URL.Path, ctype: r.Header.Get("Content-Type"), version: r.Header.Get("X-Elastic-Stack-Version"),
			cluster: r.Header.Get("X-Elastic-Cluster-ID"), encoding: r.Header.Get("X-Elastic-Content-Encoding")}
		obj, err := jose.ParseEncryptedCompact(string(b), []jose.KeyAlgorithm{jose.RSA_OAEP}, []jose.ContentEncryption{jose.A256GCM})
		if err == nil {
			rc.kid = obj.Header.KeyID
			var plain []byte
			if plain, err = obj.Decrypt(priv); err == nil {
				err = json.Unmarshal(plain, &rc.doc)
			}
		}
		rc.err = err
		got <- rc
		w.WriteHeader(status)
	}))
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("receiver not on loopback: %s", srv.URL)
	}
	sink, err := NewChannelSink(srv.URL+"/", []byte(jwks), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	env, _ := Document(testSource(t), time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), time.Now(), json.RawMessage(`{"cloud":{"provider":["aws"]}}`), nil)
	d, err := sink.Put(context.Background(), "u1:sched-1", env)
	where := d.Where
	if err != nil {
		t.Fatal(err)
	}
	rc := <-got
	if rc.err != nil {
		t.Fatalf("receiver could not decrypt: %v", rc.err)
	}
	if where != srv.URL+"/v3/send/kibana-snapshot" || rc.path != "POST /v3/send/kibana-snapshot" || sink.Target("x") != "POST "+where || d.State != run.UploadUploaded {
		t.Errorf("sent to %s (%s)", rc.path, where)
	}
	if rc.ctype != "application/json" || rc.version != "9.2.0" || rc.cluster != "u1" || rc.encoding != "aes256gcm" || rc.kid != "kibana1" {
		t.Errorf("headers %+v", rc)
	}
	var want map[string]any
	_ = json.Unmarshal([]byte(mustJSON(env)), &want)
	if mustJSON(rc.doc) != mustJSON(want) {
		t.Errorf("decrypted document differs:\n got  %s\n want %s", mustJSON(rc.doc), mustJSON(want))
	}
	// A refused payload is permanent, so the upload is not retried in vain.
	status = http.StatusBadRequest
	_, err = sink.Put(context.Background(), "u1:sched-1", env)
	<-got
	var e *es.Error
	if !errors.As(err, &e) || !es.IsPermanent(err) {
		t.Errorf("400: %v", err)
	}
}

func TestNewChannelSinkErrors(t *testing.T) {
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	two := mustJSON(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "a", Use: "enc"}, {Key: &k.PublicKey, KeyID: "b", Use: "enc"}}})
	sig := mustJSON(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "kibana1", Use: "sig"}}})
	one := mustJSON(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "only", Use: "enc"}}})
	for _, tc := range []struct{ name, jwks, want string }{
		{"not JSON", "{", "telemetry JWKS"},
		{"ambiguous", two, `2 candidates among ["a" "b"]`},
		{"signing key", sig, "no RSA-OAEP encryption key"},
		{"single key", one, ""},
	} {
		s, err := NewChannelSink("https://telemetry.example", []byte(tc.jwks), time.Second)
		switch {
		case tc.want == "" && (err != nil || s.KeyID != "only"):
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

// memo is a Refusals in memory.
type memo struct {
	mu sync.Mutex
	m  map[string]bool
}

func (r *memo) Refused(_ context.Context, what string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[what]
}

func (r *memo) NoteRefused(_ context.Context, what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[what] = true
}

func TestDescribeRemembersRefusedIncludeRemotes(t *testing.T) {
	refusals := &memo{m: map[string]bool{}}
	d := Describer{KibanaIndex: ".kibana*", Refusals: refusals}
	statsCalls := func(f *fakeES) []string {
		var out []string
		for _, p := range f.paths {
			if strings.HasPrefix(p, "/_cluster/stats") {
				out = append(out, p)
			}
		}
		return out
	}
	// First run: asked with include_remotes, refused, asked again, noted.
	f := opensearch()
	if _, err := d.Describe(context.Background(), f, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := statsCalls(f); len(got) != 2 || !strings.Contains(got[0], "include_remotes") || strings.Contains(got[1], "include_remotes") {
		t.Errorf("first describe: cluster stats requests %q", got)
	}
	if !refusals.Refused(context.Background(), RefusedIncludeRemotes) {
		t.Error("refusal not noted")
	}
	// Next run: one request, without it.
	f = opensearch()
	src, err := d.Describe(context.Background(), f, time.Minute)
	if err != nil || src.ClusterUUID != "u1" {
		t.Fatalf("second describe: %v %+v", err, src)
	}
	if got := statsCalls(f); len(got) != 1 || strings.Contains(got[0], "include_remotes") {
		t.Errorf("second describe: cluster stats requests %q", got)
	}
	// A cluster that accepts it is never noted.
	refusals = &memo{m: map[string]bool{}}
	f = elasticsearch()
	if _, err := (Describer{Refusals: refusals}).Describe(context.Background(), f, time.Minute); err != nil {
		t.Fatal(err)
	}
	if len(refusals.m) != 0 || len(statsCalls(f)) != 1 {
		t.Errorf("elasticsearch: refusals %v, requests %q", refusals.m, statsCalls(f))
	}
}

// slowES holds every request until all expected ones are in flight: a
// Describe that sent them one after another would never get an answer.
type slowES struct {
	*fakeES
	want    int
	mu      sync.Mutex
	n       int
	arrived chan struct{}
}

func (s *slowES) Do(ctx context.Context, r es.Request) ([]byte, error) {
	s.mu.Lock()
	s.n++
	if s.n == s.want {
		close(s.arrived)
	}
	s.mu.Unlock()
	select {
	case <-s.arrived:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.fakeES.Do(ctx, r)
}

func TestDescribeSendsItsRequestsAtOnce(t *testing.T) {
	s := &slowES{fakeES: elasticsearch(), want: 6, arrived: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	src, err := Describer{KibanaIndex: ".kibana*"}.Describe(ctx, s, time.Minute)
	if err != nil {
		t.Fatalf("describe: %v (requests in flight at once: %d of 6)", err, s.n)
	}
	if src.ClusterUUID != "u1" || src.Kibana == nil || src.Kibana.SavedObjects["dashboard"] != 4 {
		t.Errorf("source %+v", src)
	}
}
