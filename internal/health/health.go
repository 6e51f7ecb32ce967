package health

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Paths of the two endpoints.
const (
	LivePath  = "/healthz"
	ReadyPath = "/readyz"
)

// Check is one readiness condition. Reason is what /readyz shows when Run
// fails; it must not contain addresses or secrets.
type Check struct {
	Name   string
	Reason string
	Run    func(ctx context.Context) error
}

// Redis is ready when a PING succeeds.
func Redis(rdb redis.UniversalClient) Check {
	return Check{Name: "redis", Reason: "redis unreachable", Run: func(ctx context.Context) error {
		return rdb.Ping(ctx).Err()
	}}
}

// ServerLister is the part of asynq.Inspector that Workers needs.
type ServerLister interface {
	Servers() ([]*asynq.ServerInfo, error)
}

// Workers is ready when at least one asynq worker server has a live
// heartbeat in Redis with status "active". A server clears its entry on
// shutdown; a killed one drops out when its heartbeat expires (asynq writes
// it every 5 s with twice that as TTL).
func Workers(l ServerLister) Check {
	return Check{Name: "workers", Reason: "no worker server connected", Run: func(ctx context.Context) error {
		type res struct {
			n   int
			err error
		}
		// Inspector.Servers takes no context; bound it by ctx anyway.
		ch := make(chan res, 1)
		go func() {
			s, err := l.Servers()
			n := 0
			for _, si := range s {
				// "stopped" servers no longer pull jobs (asynq Server.Stop).
				if si.Status == "active" {
					n++
				}
			}
			ch <- res{n, err}
		}()
		select {
		case r := <-ch:
			if r.err != nil {
				return fmt.Errorf("list asynq servers: %w", r.err)
			}
			if r.n == 0 {
				return errors.New("no asynq server heartbeat in Redis")
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
}

// Flag is a condition the process sets itself, such as "my asynq server is
// running". The zero value is down.
type Flag struct{ up atomic.Bool }

// Set records the condition.
func (f *Flag) Set(up bool) { f.up.Store(up) }

// Check is ready while the flag is up.
func (f *Flag) Check(name, reason string) Check {
	return Check{Name: name, Reason: reason, Run: func(context.Context) error {
		if !f.up.Load() {
			return errors.New(reason)
		}
		return nil
	}}
}

// Handler serves LivePath and ReadyPath.
type Handler struct {
	checks  []Check
	timeout time.Duration
	log     zerolog.Logger

	mu     sync.Mutex
	failed map[string]bool // last logged state per check
}

// New returns a handler running checks in order on each /readyz request,
// each bounded by timeout.
func New(l zerolog.Logger, timeout time.Duration, checks ...Check) *Handler {
	return &Handler{checks: checks, timeout: timeout, log: l, failed: map[string]bool{}}
}

// Ready runs every check and returns the reasons of those that failed, in
// the order of the checks. They run at once, so an answer takes at most one
// timeout even when Redis is down and every check waits for it.
func (h *Handler) Ready(ctx context.Context) []string {
	errs := make([]error, len(h.checks))
	var wg sync.WaitGroup
	for i, c := range h.checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, h.timeout)
			defer cancel()
			errs[i] = c.Run(cctx)
		}()
	}
	wg.Wait()
	var reasons []string
	for i, c := range h.checks {
		h.note(c, errs[i])
		if errs[i] != nil {
			reasons = append(reasons, c.Reason)
		}
	}
	return reasons
}

// note logs a check's error when its state changes, not on every probe.
func (h *Handler) note(c Check, err error) {
	h.mu.Lock()
	was := h.failed[c.Name]
	h.failed[c.Name] = err != nil
	h.mu.Unlock()
	switch {
	case err != nil && !was:
		h.log.Warn().Err(err).Str("check", c.Name).Msg("not ready: " + c.Reason)
	case err == nil && was:
		h.log.Info().Str("check", c.Name).Msg("ready again")
	}
}

// ServeHTTP answers LivePath with 200 and ReadyPath with 200 or 503.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	switch r.URL.Path {
	case LivePath:
		_, _ = w.Write([]byte("ok\n"))
	case ReadyPath:
		if reasons := h.Ready(r.Context()); len(reasons) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + strings.Join(reasons, "; ") + "\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	default:
		http.NotFound(w, r)
	}
}

// Public routes LivePath and ReadyPath to h and everything else to rest, so
// the health endpoints stay reachable when rest requires a token.
func Public(h *Handler, rest http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == LivePath || r.URL.Path == ReadyPath {
			h.ServeHTTP(w, r)
			return
		}
		rest.ServeHTTP(w, r)
	})
}
