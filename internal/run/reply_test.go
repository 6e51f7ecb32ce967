package run

import (
	"strings"
	"testing"
)

// A script reply of another shape is an error naming the script, never
// code 0.
func TestReply(t *testing.T) {
	var code int64
	var st string
	for _, tc := range []struct {
		res  []any
		want string // "" when ok
	}{
		{[]any{int64(1), "sealed"}, ""},
		{[]any{int64(1)}, "script seal: reply [1] has 1 elements, want 2"},
		{[]any{"1", "sealed"}, "script seal: reply element 1 is string (1), want *int64"},
		{[]any{int64(0), nil}, "script seal: reply element 2 is <nil> (<nil>), want *string"},
	} {
		err := reply("seal", tc.res, &code, &st)
		switch {
		case tc.want == "" && (err != nil || code != 1 || st != "sealed"):
			t.Errorf("%v: %v (code %d, status %q)", tc.res, err, code, st)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v, want %q", tc.res, err, tc.want)
		}
	}
}
