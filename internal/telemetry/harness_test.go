package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/es"
)

var update = flag.Bool("update", false, "rewrite the golden request files in testdata/requests")

// recorder is a fake Elasticsearch: it records requests and answers each
// from answer, which returns a response body or an error.
type recorder struct {
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

// checkGolden compares the recorded requests with testdata/requests/<name>.json.
func checkGolden(t *testing.T, name string, reqs []es.Request) {
	t.Helper()
	out := make([]goldenRequest, len(reqs))
	for i, r := range reqs {
		out[i] = goldenRequest{Method: r.Method, Path: r.Path(), Body: r.Body}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	path := filepath.Join("testdata", "requests", name+".json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/telemetry -run Golden -update)", err)
	}
	if string(want) != string(got) {
		t.Errorf("requests of %s differ from %s (rerun with -update if intended):\n%s", name, path, diffLines(string(want), string(got)))
	}
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

// asJSON renders v canonically for comparisons.
func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var x any
	_ = json.Unmarshal(b, &x)
	b, _ = json.Marshal(x)
	return string(b)
}
