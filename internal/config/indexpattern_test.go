package config

import (
	"strings"
	"testing"
)

func TestIndexSettingLengthLimit(t *testing.T) {
	for _, tc := range []struct {
		name, value, err string
	}{
		{"at the limit", "a" + strings.Repeat("b", MaxIndexPatternLength-1), ""},
		{"one over", strings.Repeat("c", MaxIndexPatternLength+1), "APMTEL_INDICES_SPAN: index setting is 1001 characters long, at most 1000 are allowed"},
		{"characters, not bytes", strings.Repeat("é", MaxIndexPatternLength), ""},
		{"a list counts whole", strings.Repeat("logs-x,", 143), "is 1001 characters long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ix := DefaultIndices()
			ix.Span = tc.value
			err := ix.Validate()
			if tc.err == "" && err != nil {
				t.Fatalf("%d characters refused: %v", len([]rune(tc.value)), err)
			}
			if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), tc.value)) {
				t.Fatalf("err = %v, want %q without the value", err, tc.err)
			}
		})
	}
}
