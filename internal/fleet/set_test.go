package fleet

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/config"
)

func TestDiff(t *testing.T) {
	t.Parallel()
	d := fixture(t)
	parse := func(file string) Set {
		t.Helper()
		s, err := Parse("c.yaml", []byte(strings.ReplaceAll(file, "$D", d)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	old := parse(`clusters:
  - {name: a, urls: ["http://127.0.0.1:9200"]}
  - {name: b, urls: ["http://127.0.0.1:9201"], api_key_file: $D/api-key}
  - {name: c, urls: ["http://127.0.0.1:9202"]}
  - {name: e, urls: ["https://127.0.0.1:9204"], ca_cert: $D/ca.pem}
`)
	// The same content parsed again: nothing changed.
	if a, r, c := Diff(old, parse(`clusters:
  - {name: e, urls: ["https://127.0.0.1:9204"], ca_cert: $D/ca.pem}
  - {name: c, urls: ["http://127.0.0.1:9202"]}
  - {name: b, urls: ["http://127.0.0.1:9201"], api_key_file: $D/api-key}
  - {name: a, urls: ["http://127.0.0.1:9200"]}
`)); a != nil || r != nil || c != nil {
		t.Fatalf("reordered file: added %v removed %v changed %v", a, r, c)
	}
	// A new CA file content (rotation) changes e; a new cap changes c.
	ca := filepath.Join(d, "ca.pem")
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(ca, future, future); err != nil {
		t.Fatal(err)
	}
	added, removed, changed := Diff(old, parse(`clusters:
  - {name: b, urls: ["http://127.0.0.1:9201"], api_key_file: $D/api-key}
  - {name: c, urls: ["http://127.0.0.1:9202"], search_concurrency: 2}
  - {name: d, urls: ["http://127.0.0.1:9203"]}
  - {name: e, urls: ["https://127.0.0.1:9204"], ca_cert: $D/ca.pem}
`))
	if !slices.Equal(added, []string{"d"}) || !slices.Equal(removed, []string{"a"}) || !slices.Equal(changed, []string{"c", "e"}) {
		t.Fatalf("added %v removed %v changed %v", added, removed, changed)
	}
	if a, r, _ := Diff(Set{}, old); len(a) != 4 || r != nil {
		t.Fatalf("from empty: added %v removed %v", a, r)
	}
}

func TestStaticSource(t *testing.T) {
	t.Parallel()
	s, err := FromSource("default", sourceCluster())
	if err != nil {
		t.Fatal(err)
	}
	src := Static(s)
	if src.Current().Version() != s.Version() {
		t.Fatal("static source changed its set")
	}
	ch, stop := src.Subscribe()
	defer stop()
	select {
	case <-ch:
		t.Fatal("a static source announced a new set")
	default:
	}
	var _ Source = (*Watcher)(nil)
}

func sourceCluster() config.Cluster {
	return config.Cluster{URLs: []string{"http://127.0.0.1:9200"}, APIKey: "k"}
}
