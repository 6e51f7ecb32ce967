package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/health"
	"github.com/apmtel/apmtel/internal/logs"
	"github.com/apmtel/apmtel/internal/webguard"
)

// readyTimeout bounds each readiness check; probes usually time out at 1-5 s.
const readyTimeout = 2 * time.Second

// startHTTP serves /healthz, /readyz and /metrics on cfg.HTTPAddr for a
// worker or the scheduler until stop is called; with APMTEL_HTTP_ADDR unset
// it serves nothing. It returns once listening, so a bad address or a missing
// token fails the command before it starts working. Callers stop it after
// their own shutdown, so a draining worker still answers /readyz with 503
// instead of refusing connections.
func startHTTP(cfg config.Config, l zerolog.Logger, component string, rdb redis.UniversalClient, checks ...health.Check) (stop func(), err error) {
	if cfg.HTTPAddr == "" {
		return func() {}, nil
	}
	if err := httpAddrRule(cfg); err != nil {
		return nil, err
	}
	hl := logs.Named(l, logs.Health).With().Str("of", component).Logger()
	mux := http.NewServeMux()
	mux.Handle("/metrics", processMetrics(rdb))
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("APMTEL_HTTP_ADDR: %w", err)
	}
	h := webguard.Headers(health.Public(health.New(hl, readyTimeout, checks...), guard(cfg, ln.Addr().String(), hl, mux)))
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	hl.Info().Str("addr", ln.Addr().String()).Bool("auth", cfg.MonitorToken != "").Msg("serving /healthz, /readyz, /metrics")
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			hl.Error().Err(err).Msg("health endpoint stopped")
		}
	}()
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
	}, nil
}

// httpAddrRule refuses an APMTEL_HTTP_ADDR off loopback without a token;
// checked before anything connects, so the error is about the setting.
func httpAddrRule(cfg config.Config) error {
	if cfg.HTTPAddr == "" {
		return nil
	}
	if err := webguard.RequireToken("APMTEL_HTTP_ADDR", cfg.HTTPAddr, cfg.MonitorToken); err != nil {
		return &config.UsageError{Err: err}
	}
	return nil
}
