package cli

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/pflag"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/health"
)

// healthcheck probes a health endpoint for container healthchecks (the
// distroless image has no curl). Exit 0 means a 2xx answer; everything else,
// a usage error included, exits 1, because Docker reserves status 2 (Main).
func healthcheckCommand() command {
	var url string
	var timeout time.Duration
	return command{name: "healthcheck", summary: "exit 0 when a health endpoint answers 2xx (for container healthchecks)",
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&url, "url", "", "URL to probe (default http://APMTEL_HTTP_ADDR/readyz, else http://APMTEL_MONITOR_ADDR/readyz; wildcard hosts become loopback)")
			fs.DurationVar(&timeout, "timeout", 3*time.Second, "give up after this long")
		},
		run: func(e *env, _ []string) error { return runHealthcheck(e, url, timeout) }}
}

func runHealthcheck(e *env, url string, timeout time.Duration) error {
	target := url
	if target == "" {
		// Only the two addresses matter here; the checked process validates
		// the rest of its configuration itself, and a healthcheck must not
		// turn an unrelated bad setting into "unhealthy".
		c := config.Default()
		_ = config.FromEnv(&c, e.lookup, func(o config.Option) bool { return o.Env == "APMTEL_HTTP_ADDR" || o.Env == "APMTEL_MONITOR_ADDR" })
		target = health.DefaultURL(c.HTTPAddr, c.MonitorAddr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := health.Probe(ctx, &http.Client{}, target); err != nil {
		return &exitError{code: 1, err: err}
	}
	fmt.Fprintf(e.stdout, "ok %s\n", target)
	return nil
}
