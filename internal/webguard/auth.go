package webguard

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// Failed authentication is slowed per client address: each client may fail
// failBurst times at once, then once per failEvery; past that its requests
// are answered 429 before any token is compared, so guessing gets nowhere
// (2,000 guesses at 14,000/s become 10 guesses, then one a second). The
// client is the connection's address, never a forwarded-for header, which
// anyone can write; behind a proxy all clients share its budget.
const (
	failBurst = 10
	failEvery = time.Second
	// logEvery bounds the log lines per client: the first failure is
	// logged, later ones at most this often, with the count in between.
	logEvery = 10 * time.Second
	// maxClients bounds the memory of the table: past it, clients whose
	// budget is whole again are forgotten (they start over with a whole one).
	maxClients = 4096
)

var authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "apmtel", Name: "auth_failures_total",
	Help: "Requests refused for authentication, by reason (missing or wrong token; throttled: the client failed too often and was not checked)."},
	[]string{"reason"})

// Collector exports apmtel_auth_failures_total of every Guard of the process.
func Collector() prometheus.Collector { return authFailures }

// Failure reasons.
const (
	reasonMissing   = "missing"
	reasonWrong     = "wrong"
	reasonThrottled = "throttled"
)

type failures struct {
	log zerolog.Logger
	now func() time.Time

	mu      sync.Mutex
	clients map[string]*client
}

type client struct {
	budget *rate.Limiter
	// loggedAt is the last log line's time; unlogged the failures since.
	loggedAt time.Time
	unlogged int
}

// clock is the failures' time source (tests stand in for it).
var clock = time.Now

func newFailures(log zerolog.Logger) *failures {
	return &failures{log: log, now: clock, clients: map[string]*client{}}
}

func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// throttled reports whether ip has failed too often to be checked now, and
// how long until it may try again.
func (f *failures) throttled(ip string) (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.clients[ip]
	if c == nil {
		return 0, false
	}
	now := f.now()
	if t := c.budget.TokensAt(now); t < 1 {
		return time.Duration((1 - t) * float64(failEvery)), true
	}
	return 0, false
}

// failed records a refused request of ip: counted, logged (rate-limited, no
// credential) and, unless it was already throttled, taken from its budget.
func (f *failures) failed(r *http.Request, ip, reason string) {
	authFailures.WithLabelValues(reason).Inc()
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	c := f.clients[ip]
	if c == nil {
		if len(f.clients) >= maxClients {
			f.forget(now)
		}
		c = &client{budget: rate.NewLimiter(rate.Every(failEvery), failBurst)}
		f.clients[ip] = c
	}
	if reason != reasonThrottled {
		c.budget.AllowN(now, 1)
	}
	c.unlogged++
	if !c.loggedAt.IsZero() && now.Sub(c.loggedAt) < logEvery {
		return
	}
	f.log.Warn().Str("client", ip).Str("method", r.Method).Str("path", r.URL.Path).Str("reason", reason).
		Int("failures", c.unlogged).Msg("authentication failed (failures: since the last such line for this client)")
	c.loggedAt, c.unlogged = now, 0
}

// forget drops the clients whose budget is whole again.
func (f *failures) forget(now time.Time) {
	for ip, c := range f.clients {
		if c.budget.TokensAt(now) >= failBurst {
			delete(f.clients, ip)
		}
	}
}

func retryAfter(d time.Duration) string {
	return strconv.Itoa(int(max(1, (d+time.Second-1)/time.Second)))
}
