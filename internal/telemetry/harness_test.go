package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/es"
)

var update = flag.Bool("update", false, "rewrite the golden request files in testdata/requests")

// recorder is a fake Elasticsearch: it records requests and answers each
// from answer, which returns a response body or an error. Tasks send
// requests concurrently, so i is the arrival order, which is only
// meaningful among requests a task sends one after another (pages).
type recorder struct {
	mu     sync.Mutex
	reqs   []es.Request
	answer func(i int, r es.Request) (string, error)
}

func (f *recorder) Do(ctx context.Context, r es.Request) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, r)
	body, err := f.answer(len(f.reqs)-1, r)
	if err != nil {
		return nil, err
	}
	return []byte(body), nil
}

// always answers every request with the same body.
func always(body string) func(int, es.Request) (string, error) {
	return func(int, es.Request) (string, error) { return body, nil }
}

var testNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func testEnv(d es.Doer) Env {
	return Env{ES: d, Indices: config.DefaultIndices(), SearchTimeout: 5 * time.Minute, Now: func() time.Time { return testNow }}
}

// goldenRequest is how a request is written to a golden file.
type goldenRequest struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Body   any    `json:"body,omitempty"`
}

// checkGolden compares the recorded requests with testdata/requests/<name>.json
// as a multiset: tasks send independent requests concurrently, so their
// order is not part of the contract. -update leaves a file that already
// holds the same requests alone and writes a new one sorted, so that the
// files stay stable.
func checkGolden(t *testing.T, name string, reqs []es.Request) {
	t.Helper()
	out := make([]goldenRequest, len(reqs))
	for i, r := range reqs {
		out[i] = goldenRequest{Method: r.Method, Path: r.Path(), Body: r.Body}
	}
	got := canonicalRequests(t, out)
	path := filepath.Join("testdata", "requests", name+".json")
	want, err := os.ReadFile(path)
	var wantReqs []goldenRequest
	if err == nil {
		err = json.Unmarshal(want, &wantReqs)
	}
	same := err == nil && slices.Equal(canonicalRequests(t, wantReqs), got)
	if *update {
		if same {
			return
		}
		sorted := make([]json.RawMessage, len(got))
		for i, g := range got {
			sorted[i] = json.RawMessage(g)
		}
		if err := os.WriteFile(path, encodeIndented(t, sorted), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err != nil {
		t.Fatalf("%v (run go test ./internal/telemetry -run Golden -update)", err)
	}
	if !same {
		t.Errorf("requests of %s differ from %s (rerun with -update if intended); sorted:\n%s", name, path,
			diffLines(strings.Join(canonicalRequests(t, wantReqs), "\n"), strings.Join(got, "\n")))
	}
}

// canonicalRequests renders each request as canonical JSON, sorted.
func canonicalRequests(t *testing.T, reqs []goldenRequest) []string {
	t.Helper()
	out := make([]string, len(reqs))
	for i, r := range reqs {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
		var x any
		if err := json.Unmarshal(buf.Bytes(), &x); err != nil {
			t.Fatal(err)
		}
		buf.Reset()
		if err := enc.Encode(x); err != nil { // maps encode with sorted keys
			t.Fatal(err)
		}
		out[i] = strings.TrimSpace(buf.String())
	}
	slices.Sort(out)
	return out
}

func encodeIndented(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			out = append(out, fmt.Sprintf("line %d:\n  -%s\n  +%s", i+1, x, y))
		}
		if len(out) > 10 {
			break
		}
	}
	return strings.Join(out, "\n")
}

// diffJSON compares v, as it would be encoded, with the JSON text want by
// value: "" when they are equal, else a diff (-want +got).
func diffJSON(t *testing.T, want string, v any) string {
	t.Helper()
	var w, g any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want is not JSON: %v\n%s", err, want)
	}
	if err := json.Unmarshal([]byte(asJSON(t, v)), &g); err != nil {
		t.Fatal(err)
	}
	return cmp.Diff(w, g)
}

// asJSON renders v canonically (for substring checks of request bodies).
func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		t.Fatal(err)
	}
	if b, err = json.Marshal(x); err != nil {
		t.Fatal(err)
	}
	return string(b)
}
