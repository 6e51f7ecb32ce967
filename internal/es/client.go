package es

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/apmtel/apmtel/internal/boundedfile"
	"github.com/apmtel/apmtel/internal/config"
)

// Doer sends one request and returns the raw 2xx body. *Client implements it;
// tests use recorders that answer from fixtures.
type Doer interface {
	Do(ctx context.Context, r Request) ([]byte, error)
}

// Client is a Doer backed by go-elasticsearch.
type Client struct {
	es *elasticsearch.Client
	// maxBody bounds how much of a response is read, so a runaway aggregation
	// cannot exhaust a worker's memory.
	maxBody   int64
	retries   int
	gate      Gate
	base, top time.Duration
}

// Gate is taken around every attempt of a request and returns a context
// for the attempt (cancelled if the gate is lost) and its release function.
// The cluster-wide limiter is a Gate, so that retries count against the cap
// while backoff waits hold no slot.
type Gate func(ctx context.Context) (context.Context, func(), error)

// ClientParams are the inputs of NewClient.
type ClientParams struct {
	Cluster config.Cluster
	// CACertSetting names the setting Cluster.CACert came from (like
	// APMTEL_SOURCE_CA_CERT), so that a bad file's error says what to fix.
	CACertSetting string
	// Transport replaces the HTTP transport (tests, proxies); nil uses a tuned default.
	Transport http.RoundTripper
	// MaxRetries is the number of retries of a request answered 429 or 5xx,
	// or failed by a network error; 0 means DefaultMaxRetries and a negative
	// value disables retries. A request that timed out is not retried.
	MaxRetries int
	// Gate, when not nil, is taken around every attempt.
	Gate Gate
	// MaxBody bounds one answer in bytes (0: DefaultMaxBody); a larger one
	// fails the request with a *TooLargeError, which is permanent.
	MaxBody int64
	// RetryBase and RetryMax shape the backoff (defaults 200ms and 10s):
	// attempt n waits a random time in [d/2, d), d = min(RetryBase·2ⁿ, RetryMax),
	// or the answer's Retry-After when that is longer.
	RetryBase, RetryMax time.Duration
}

// DefaultMaxBody is the answer bound of a client without MaxBody.
const DefaultMaxBody = 256 << 20

// TooLargeError is an answer larger than the client's MaxBody. Retrying
// gets the same answer: it is permanent.
type TooLargeError struct{ Limit int64 }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("answer larger than %d MiB (APMTEL_SEARCH_MAX_ANSWER_MB): not read", e.Limit>>20)
}

// DefaultMaxRetries is the retry budget of a request: with the default
// backoff about 6 s of waiting in all, enough to ride out a busy node's
// rejections, short against the task timeout.
const DefaultMaxRetries = 5

// maxRetryAfter caps a server's Retry-After, so a bogus value cannot park a
// task; a longer wait than the caller's deadline ends the request at once.
const maxRetryAfter = time.Minute

// NewClient returns a client for p.Cluster.
func NewClient(p ClientParams) (*Client, error) {
	if !p.Cluster.Configured() {
		return nil, fmt.Errorf("no cluster URL configured")
	}
	var tr http.RoundTripper = p.Transport
	if tr == nil {
		t, err := NewTransport(p.Cluster)
		if err != nil {
			if p.CACertSetting != "" {
				return nil, fmt.Errorf("%s: %w", p.CACertSetting, err)
			}
			return nil, err
		}
		tr = t
	}
	retries := p.MaxRetries
	if retries == 0 {
		retries = DefaultMaxRetries
	}
	cfg := elasticsearch.Config{
		Addresses: p.Cluster.URLs,
		Username:  p.Cluster.Username,
		Password:  p.Cluster.Password,
		APIKey:    p.Cluster.APIKey,
		Transport: tr,
		// Retries are ours (Do): per attempt through the gate, with jitter
		// and Retry-After, which go-elasticsearch's retry loop cannot do.
		DisableRetry: true,
	}
	c, err := elasticsearch.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch client: %w", err)
	}
	base, top := p.RetryBase, p.RetryMax
	if base <= 0 {
		base = 200 * time.Millisecond
	}
	if top <= 0 {
		top = 10 * time.Second
	}
	maxBody := p.MaxBody
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	return &Client{es: c, maxBody: maxBody, retries: max(retries, 0), gate: p.Gate, base: base, top: top}, nil
}

// Do sends r under ctx. Each attempt is bounded by r.Timeout; 429, 5xx and
// network errors are retried (see ClientParams) while ctx lasts.
func (c *Client) Do(ctx context.Context, r Request) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	var body []byte
	contentType := "application/json"
	if r.NDJSON != nil {
		body, contentType = r.NDJSON, "application/x-ndjson"
	} else if r.Body != nil {
		b, err := json.Marshal(r.Body)
		if err != nil {
			return nil, fmt.Errorf("%s: encode body: %w", r.Endpoint, err)
		}
		body = b
	}
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	for attempt := 0; ; attempt++ {
		b, retryAfter, err := c.attempt(ctx, r, method, body, contentType)
		if err == nil || retryAfter < 0 || attempt >= c.retries {
			if err != nil && attempt > 0 {
				err = fmt.Errorf("%w (after %d attempts)", err, attempt+1)
			}
			return b, err
		}
		wait := c.backoff(attempt)
		if retryAfter > wait {
			wait = retryAfter
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return nil, fmt.Errorf("%w (no time left to retry in %s)", err, wait.Round(time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (retry abandoned: %w)", err, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// backoff is attempt n's wait before Retry-After: equal jitter, so that
// requests rejected together do not come back together.
func (c *Client) backoff(n int) time.Duration {
	d := c.base << min(n, 16)
	if d > c.top || d <= 0 {
		d = c.top
	}
	return d/2 + rand.N(d/2+1)
}

// attempt sends r once. retryAfter < 0 means the error is final; otherwise
// the request may be retried, after at least retryAfter.
func (c *Client) attempt(ctx context.Context, r Request, method string, body []byte, contentType string) (_ []byte, retryAfter time.Duration, _ error) {
	if c.gate != nil {
		gctx, release, err := c.gate(ctx)
		if err != nil {
			return nil, -1, fmt.Errorf("%s: %w", r.Endpoint, err)
		}
		defer release()
		ctx = gctx
	}
	ctx, cancel := context.WithTimeoutCause(ctx, r.Timeout, &RequestTimeoutError{Timeout: r.Timeout})
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.Path(), rd)
	if err != nil {
		return nil, -1, fmt.Errorf("%s: %w", r.Endpoint, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if r.OpaqueID != "" {
		req.Header.Set("X-Opaque-Id", r.OpaqueID)
	}
	res, err := c.es.Perform(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, -1, fmt.Errorf("%s: %w", r.Endpoint, context.Cause(ctx))
		}
		return nil, 0, fmt.Errorf("%s: %w", r.Endpoint, err)
	}
	defer res.Body.Close()
	if res.ContentLength > c.maxBody {
		return nil, -1, fmt.Errorf("%s: %w", r.Endpoint, &TooLargeError{Limit: c.maxBody})
	}
	b, err := readBody(res.Body, res.ContentLength, c.maxBody)
	if err != nil {
		if ctx.Err() != nil {
			return nil, -1, fmt.Errorf("%s: read response: %w", r.Endpoint, context.Cause(ctx))
		}
		return nil, 0, fmt.Errorf("%s: read response: %w", r.Endpoint, err)
	}
	if int64(len(b)) > c.maxBody {
		return nil, -1, fmt.Errorf("%s: %w", r.Endpoint, &TooLargeError{Limit: c.maxBody})
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		err := fmt.Errorf("%s %s: %w", method, r.Endpoint, parseError(res.StatusCode, b))
		if !retryableStatus(res.StatusCode) {
			return nil, -1, err
		}
		return nil, parseRetryAfter(res.Header.Get("Retry-After"), time.Now()), err
	}
	return b, 0, nil
}

// readBody reads at most limit+1 bytes of an answer. With a known length the
// buffer is allocated once at its size: io.ReadAll doubles its way up and,
// for a 50 MB answer, leaves about as much garbage again behind.
func readBody(body io.Reader, length, limit int64) ([]byte, error) {
	if length < 0 {
		return io.ReadAll(io.LimitReader(body, limit+1))
	}
	var buf bytes.Buffer
	buf.Grow(int(min(length, limit) + bytes.MinRead))
	_, err := buf.ReadFrom(io.LimitReader(body, limit+1))
	return buf.Bytes(), err
}

// retryableStatus: too many requests and server-side trouble; 501 and 505
// will not get better.
func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || code >= 500 && code <= 599 && code != 501 && code != 505
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent or invalid.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// ClusterInfo is the answer of GET /.
type ClusterInfo struct {
	ClusterName string `json:"cluster_name"`
	ClusterUUID string `json:"cluster_uuid"`
	Version     struct {
		Number string `json:"number"`
	} `json:"version"`
}

// Info returns the cluster's name, UUID and version.
func Info(ctx context.Context, d Doer, timeout time.Duration) (ClusterInfo, error) {
	var info ClusterInfo
	b, err := d.Do(ctx, Request{Method: "GET", ClusterWide: true, Timeout: timeout})
	if err != nil {
		return info, fmt.Errorf("cluster info: %w", err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, fmt.Errorf("cluster info: decode: %w", err)
	}
	if info.ClusterUUID == "" {
		return info, fmt.Errorf("cluster info: no cluster_uuid in response")
	}
	return info, nil
}

// WithOpaqueID returns a Doer that labels every request with id.
func WithOpaqueID(d Doer, id string) Doer { return opaque{d, id} }

type opaque struct {
	Doer
	id string
}

func (o opaque) Do(ctx context.Context, r Request) ([]byte, error) {
	r.OpaqueID = o.id
	return o.Doer.Do(ctx, r)
}

// NewTransport is the tuned HTTP transport of a client of c: its TLS
// settings (CA file, Insecure) and a pool sized for a task's fan-out. A
// caller that builds it (to wrap it) closes its idle connections when done.
func NewTransport(c config.Cluster) (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	t.ResponseHeaderTimeout = 0                                                         // bounded per request by the context
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.Insecure} //nolint:gosec // opt-in, warned about
	if c.CACert != "" {
		pem, err := boundedfile.Read(c.CACert)
		if err != nil {
			return nil, fmt.Errorf("read CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA certificate %s holds no PEM certificate", c.CACert)
		}
		tlsCfg.RootCAs = pool
	}
	t.TLSClientConfig = tlsCfg
	return t, nil
}
