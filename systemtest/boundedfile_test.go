package systemtest

import (
	"strings"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/testenv"
)

// Every file apmtel reads from its configuration is size-limited: a worker
// pointed at /dev/zero (which os.ReadFile reads until the kernel kills the
// machine's memory) exits at once naming the variable and the limit.
func TestConfiguredFilesAreSizeLimited(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	for _, tc := range []struct {
		name  string
		extra []string
		says  string // names the setting
	}{
		{"APMTEL_SOURCE_CA_CERT", []string{"APMTEL_SOURCE_CA_CERT=/dev/zero"}, "APMTEL_SOURCE_CA_CERT: "},
		{"APMTEL_TELEMETRY_CA_CERT", []string{"APMTEL_TELEMETRY_URL=http://127.0.0.1:1", "APMTEL_TELEMETRY_CA_CERT=/dev/zero"}, "APMTEL_TELEMETRY_CA_CERT: "},
		{"APMTEL_REDIS_CA_CERT", []string{"APMTEL_REDIS_CA_CERT=/dev/zero"}, "APMTEL_REDIS_CA_CERT"},
		{"APMTEL_SOURCE_PASSWORD_FILE", []string{"APMTEL_SOURCE_PASSWORD_FILE=/dev/zero"}, "APMTEL_SOURCE_PASSWORD_FILE"},
		{"APMTEL_REDIS_PASSWORD_FILE", []string{"APMTEL_REDIS_PASSWORD_FILE=/dev/zero"}, "APMTEL_REDIS_PASSWORD_FILE"},
		{"APMTEL_TELEMETRY_JWKS", []string{"APMTEL_TELEMETRY_ENDPOINT=https://127.0.0.1:1", "APMTEL_TELEMETRY_JWKS=/dev/zero"}, "APMTEL_TELEMETRY_JWKS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, stderr, code := testenv.Exec(t, s.env(t, "http://127.0.0.1:1", tc.extra...), "worker")
			took := time.Since(start)
			if code == 0 || took > 20*time.Second || !strings.Contains(stderr, tc.says) || !strings.Contains(stderr, "/dev/zero: file too large: more than 4 MiB") {
				t.Errorf("exit %d after %s: %s; want a refusal naming %s and the limit", code, took, stderr, tc.says)
			}
			t.Logf("%s=/dev/zero refused in %s (process start to exit)", tc.name, took.Round(time.Millisecond))
		})
	}
}
