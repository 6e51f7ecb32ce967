package cli

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"time"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/health"
)

// runHealthcheck probes a health endpoint for container healthchecks (the
// distroless image has no curl). Exit 0 means a 2xx answer; everything else,
// a usage error included, exits 1, because Docker reserves status 2.
func runHealthcheck(e *env, args []string) error {
	fs := flag.NewFlagSet("apmtel healthcheck", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	url := fs.String("url", "", "URL to probe (default http://APMTEL_HTTP_ADDR/readyz, else http://APMTEL_MONITOR_ADDR/readyz; wildcard hosts become loopback)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: apmtel healthcheck [--url URL] [--timeout D]\n\nExits 0 when URL answers 2xx, 1 otherwise.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := e.parse(fs, args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return &exitError{code: 1, err: err}
	}
	if fs.NArg() > 0 {
		return &exitError{code: 1, err: fmt.Errorf("unexpected argument %q (use --url)", fs.Arg(0))}
	}
	target := *url
	if target == "" {
		// Only the two addresses matter here; the checked process validates
		// the rest of its configuration itself, and a healthcheck must not
		// turn an unrelated bad setting into "unhealthy".
		c := config.Default()
		_ = config.FromEnv(&c, e.lookup)
		target = health.DefaultURL(c.HTTPAddr, c.MonitorAddr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := health.Probe(ctx, &http.Client{}, target); err != nil {
		return &exitError{code: 1, err: err}
	}
	fmt.Fprintf(e.stdout, "ok %s\n", target)
	return nil
}
