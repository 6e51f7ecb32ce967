package fleet

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkParse1000 parses a clusters file of 1,000 entries: the cost of
// every reload of a large fleet's file.
func BenchmarkParse1000(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("clusters:\n")
	for i := range 1000 {
		fmt.Fprintf(&sb, "  - name: cluster-%04d\n    urls: [\"https://es-%04d.example:9200\"]\n    search_concurrency: 4\n", i, i)
	}
	data := []byte(sb.String())
	b.ReportAllocs()
	for b.Loop() {
		s, err := Parse("c.yaml", data)
		if err != nil || s.Len() != 1000 {
			b.Fatal(s.Len(), err)
		}
	}
}
