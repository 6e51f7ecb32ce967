package webguard

import (
	"strings"
	"testing"
)

// The one exposure rule: off loopback, a listener needs a token.
func TestRequireToken(t *testing.T) {
	for _, tc := range []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:8080", "", true},
		{"[::1]:8080", "", true},
		{"localhost:8080", "", true},
		{"0.0.0.0:8080", "", false},
		{":8080", "", false},
		{"192.0.2.7:8080", "", false},
		{"0.0.0.0:8080", "s3cret-token", true},
	} {
		err := RequireToken("APMTEL_HTTP_ADDR", tc.addr, tc.token)
		if (err == nil) != tc.ok {
			t.Errorf("%q with token %v: %v, want ok %v", tc.addr, tc.token != "", err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "APMTEL_MONITOR_TOKEN: required when APMTEL_HTTP_ADDR ("+tc.addr+")") {
			t.Errorf("error %q does not name the setting and the address", err)
		}
	}
}
