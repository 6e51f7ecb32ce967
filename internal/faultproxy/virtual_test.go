package faultproxy

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/testenv"
)

func get(t *testing.T, method, u, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b
}

type identity struct {
	ClusterName string `json:"cluster_name"`
	ClusterUUID string `json:"cluster_uuid"`
	Version     struct {
		Number string `json:"number"`
	} `json:"version"`
	Nodes struct {
		Count struct {
			Total int `json:"total"`
		} `json:"count"`
		Versions []string `json:"versions"`
	} `json:"nodes"`
}

func engine(t *testing.T) *url.URL {
	t.Helper()
	u, err := url.Parse(testenv.OpenSearchURL(t))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Each port answers as its own cluster and counts its own requests.
func TestFleetAnswersAsDistinctClusters(t *testing.T) {
	t.Parallel()
	target := engine(t)
	proxies := map[int]*Proxy{}
	f, err := NewFleet(3, "vc", func(i int) http.Handler { proxies[i] = New(target); return proxies[i] })
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vcs := f.Clusters()
	vcs[1].SetVersion("8.19.1")
	seen := map[string]bool{}
	for _, v := range vcs {
		for _, path := range []string{"/", "/_cluster/stats", "/?filter_path=cluster_uuid"} {
			code, b := get(t, "GET", v.URL()+path, "")
			var id identity
			if err := json.Unmarshal(b, &id); code != 200 || err != nil {
				t.Fatalf("%s%s: %d %v %s", v.Name, path, code, err, b)
			}
			if id.ClusterUUID != v.UUID || len(v.UUID) != 22 {
				t.Fatalf("%s%s: uuid %q, want %q", v.Name, path, id.ClusterUUID, v.UUID)
			}
			switch path {
			case "/":
				if id.ClusterName != v.Name || id.Version.Number == "" || (v == vcs[1]) != (id.Version.Number == "8.19.1") {
					t.Fatalf("%s: name %q version %q", v.Name, id.ClusterName, id.Version.Number)
				}
			case "/_cluster/stats":
				if id.ClusterName != v.Name || id.Nodes.Count.Total < 1 {
					t.Fatalf("%s: stats name %q nodes %d (the engine's answer, renamed)", v.Name, id.ClusterName, id.Nodes.Count.Total)
				}
				if vs := id.Nodes.Versions; (v == vcs[1]) != (len(vs) == 1 && vs[0] == "8.19.1") {
					t.Fatalf("%s: stats versions %v", v.Name, vs)
				}
			default:
				if strings.Contains(string(b), "cluster_name") {
					t.Fatalf("filter_path answer gained a field: %s", b)
				}
			}
		}
		seen[v.UUID] = true
		// Other answers naming the cluster name this one.
		if code, b := get(t, "GET", v.URL()+"/_cluster/health", ""); code != 200 || !strings.Contains(string(b), `"cluster_name":"`+v.Name+`"`) {
			t.Fatalf("%s health: %d %s", v.Name, code, b)
		}
		// Anything else passes through untouched, with the product header.
		res, err := http.Get(v.URL() + "/_cat/health?format=json")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("X-Elastic-Product") != "Elasticsearch" {
			t.Fatalf("pass-through: %d %v", res.StatusCode, res.Header)
		}
	}
	if len(seen) != 3 {
		t.Fatalf("uuids not distinct: %v", seen)
	}

	// In flight, per port: 5 slow requests at vc-0000, 2 at vc-0001.
	for _, v := range vcs {
		v.ResetStats()
	}
	proxies[0].SetFault(Fault{Mode: "delay", DelayMS: 300})
	proxies[1].SetFault(Fault{Mode: "delay", DelayMS: 300})
	var wg sync.WaitGroup
	for i, n := range []int{5, 2} {
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if code, b := get(t, "GET", vcs[i].URL()+"/_cluster/health", ""); code != 200 {
					t.Errorf("health: %d %s", code, b)
				}
			}()
		}
	}
	wg.Wait()
	st := f.Stats()
	if s := st["vc-0000"]; s.Requests != 5 || s.MaxInFlight != 5 || s.InFlight != 0 {
		t.Fatalf("vc-0000 %+v", s)
	}
	if s := st["vc-0001"]; s.Requests != 2 || s.MaxInFlight != 2 {
		t.Fatalf("vc-0001 %+v", s)
	}
	if s := st["vc-0002"]; s.Requests != 0 {
		t.Fatalf("vc-0002 %+v", s)
	}
	// Control requests reach the cluster's own proxy and are not counted.
	if code, _ := get(t, "POST", vcs[2].URL()+"/__proxy/fault", `{"mode":"status","status":503}`); code != http.StatusNoContent {
		t.Fatalf("fault control: %d", code)
	}
	if code, _ := get(t, "GET", vcs[2].URL()+"/_cluster/health", ""); code != 503 {
		t.Fatalf("vc-0002 fault not applied: %d", code)
	}
	if code, _ := get(t, "GET", vcs[1].URL()+"/_cluster/health", ""); code != 200 {
		t.Fatalf("vc-0002's fault leaked to vc-0001: %d", code)
	}
}

// A run recorded once is replayed by many clusters without the engine.
func TestReplayServesManyClustersFromOneRecording(t *testing.T) {
	t.Parallel()
	target := engine(t)
	front := New(target)
	tape := NewTape()
	rec, err := NewFleet(1, "rec", func(int) http.Handler { return tape.Recorder(front) })
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	search := func(ms string) string {
		return `{"size":0,"query":{"range":{"@timestamp":{"gte":` + ms + `,"format":"epoch_millis"}}},"track_total_hits":true}`
	}
	requests := []struct{ method, path, body string }{
		{"GET", "/", ""},
		{"GET", "/_cluster/stats", ""},
		{"GET", "/_cluster/health", ""},
		{"POST", "/_search", search("1764806400000")},
	}
	recorded := map[string][]byte{}
	for _, r := range requests {
		code, b := get(t, r.method, rec.Clusters()[0].URL()+r.path, r.body)
		if code != 200 {
			t.Fatalf("record %s %s: %d %s", r.method, r.path, code, b)
		}
		recorded[r.path] = b
	}
	path := filepath.Join(t.TempDir(), "tape.json")
	if err := tape.Save(path); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadTape(path)
	if err != nil || loaded.Len() != len(requests) {
		t.Fatalf("loaded %v %v", loaded, err)
	}

	engineBefore := front.Stats().Requests
	const n, delay = 50, 100 * time.Millisecond
	replay := loaded.Replayer(delay)
	f, err := NewFleet(n, "rp", func(int) http.Handler { return replay })
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	var wg sync.WaitGroup
	for _, v := range f.Clusters() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, r := range requests {
				body := r.body
				if r.path == "/_search" {
					body = search("1764892800000") // another run's time range: the same query
				}
				code, b := get(t, r.method, v.URL()+r.path, body)
				if code != 200 {
					t.Errorf("%s %s: %d %s", v.Name, r.path, code, b)
					return
				}
				var id identity
				_ = json.Unmarshal(b, &id)
				switch r.path {
				case "/", "/_cluster/stats":
					if id.ClusterName != v.Name || id.ClusterUUID != v.UUID {
						t.Errorf("%s %s: answered as %s/%s", v.Name, r.path, id.ClusterName, id.ClusterUUID)
					}
				case "/_cluster/health":
					if id.ClusterName != v.Name || id.ClusterUUID != "" {
						t.Errorf("%s %s: answered as %s/%s", v.Name, r.path, id.ClusterName, id.ClusterUUID)
					}
				default:
					if string(b) != string(recorded[r.path]) {
						t.Errorf("%s %s: answer differs from the recording", v.Name, r.path)
					}
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	hits, misses, last := replay.Counts()
	if hits != n*len(requests) || misses != 0 {
		t.Fatalf("hits %d misses %d (last %s), want %d hits", hits, misses, last, n*len(requests))
	}
	if got := front.Stats().Requests; got != engineBefore {
		t.Fatalf("the engine saw %d requests during the replay", got-engineBefore)
	}
	// Each request waited the delay: 4 sequential requests per cluster.
	if took < time.Duration(len(requests))*delay {
		t.Fatalf("replay took %s, less than %d × %s", took, len(requests), delay)
	}
	for name, s := range f.Stats() {
		if s.Requests != len(requests) || s.MaxInFlight != 1 {
			t.Fatalf("%s %+v", name, s)
		}
	}
	// Not on the tape: an error answer, counted.
	if code, b := get(t, "GET", f.Clusters()[0].URL()+"/_nodes/usage", ""); code != 404 || !strings.Contains(string(b), "not_recorded") {
		t.Fatalf("unrecorded: %d %s", code, b)
	}
	if _, misses, last := replay.Counts(); misses != 1 || !strings.HasPrefix(last, "GET /_nodes/usage?") {
		t.Fatalf("misses %d last %q", misses, last)
	}
}
