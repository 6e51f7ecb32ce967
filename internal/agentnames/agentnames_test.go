package agentnames

import (
	"slices"
	"testing"
)

func TestLists(t *testing.T) {
	if n := len(WithoutOTel); n != 18 {
		t.Errorf("WithoutOTel has %d names, want 18 (11 Elastic, 5 EDOT, 1 OTel, ios/swift)", n)
	}
	for _, n := range OpenTelemetry() {
		if slices.Contains(WithoutOTel, n) {
			t.Errorf("%s is an OpenTelemetry name but in WithoutOTel", n)
		}
	}
	s := Schema()
	if len(s) != 46 || s[44] != "opentelemetry/python/elastic" || s[45] != "opentelemetry/java/opentelemetry-java-instrumentation" {
		t.Errorf("Schema: %d keys, last %v", len(s), s[len(s)-2:])
	}
	seen := map[string]bool{}
	for _, n := range s {
		if seen[n] {
			t.Errorf("%s twice in Schema", n)
		}
		seen[n] = true
	}
}
