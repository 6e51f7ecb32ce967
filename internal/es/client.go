package es

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

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
	maxBody int64
}

// ClientParams are the inputs of NewClient.
type ClientParams struct {
	Cluster config.Cluster
	// Transport replaces the HTTP transport (tests, proxies); nil uses a tuned default.
	Transport http.RoundTripper
	// MaxRetries is the number of retries on 429/502/503/504 and network errors;
	// 0 means the default (3) and a negative value disables retries.
	MaxRetries int
}

// NewClient returns a client for p.Cluster.
func NewClient(p ClientParams) (*Client, error) {
	if !p.Cluster.Configured() {
		return nil, fmt.Errorf("no cluster URL configured")
	}
	tr := p.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 16
		t.ResponseHeaderTimeout = 0                                                                 // bounded per request by the context
		tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: p.Cluster.Insecure} //nolint:gosec // opt-in, warned about
		if p.Cluster.CACert != "" {
			pem, err := os.ReadFile(p.Cluster.CACert)
			if err != nil {
				return nil, fmt.Errorf("read CA certificate: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("CA certificate %s holds no PEM certificate", p.Cluster.CACert)
			}
			tlsCfg.RootCAs = pool
		}
		t.TLSClientConfig = tlsCfg
		tr = t
	}
	retries := p.MaxRetries
	if retries == 0 {
		retries = 3
	}
	disableRetry := retries < 0
	cfg := elasticsearch.Config{
		Addresses:     p.Cluster.URLs,
		Username:      p.Cluster.Username,
		Password:      p.Cluster.Password,
		APIKey:        p.Cluster.APIKey,
		Transport:     tr,
		MaxRetries:    max(retries, 0),
		DisableRetry:  disableRetry,
		RetryOnStatus: []int{429, 502, 503, 504},
		RetryBackoff: func(attempt int) time.Duration {
			d := time.Duration(1<<min(attempt, 6)) * 100 * time.Millisecond
			return d
		},
	}
	c, err := elasticsearch.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch client: %w", err)
	}
	return &Client{es: c, maxBody: 256 << 20}, nil
}

// Do sends r under ctx, bounded by r.Timeout.
func (c *Client) Do(ctx context.Context, r Request) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, r.Timeout, &RequestTimeoutError{Timeout: r.Timeout})
	defer cancel()
	var body io.Reader
	contentType := "application/json"
	if r.NDJSON != nil {
		body, contentType = bytes.NewReader(r.NDJSON), "application/x-ndjson"
	} else if r.Body != nil {
		b, err := json.Marshal(r.Body)
		if err != nil {
			return nil, fmt.Errorf("%s: encode body: %w", r.Endpoint, err)
		}
		body = bytes.NewReader(b)
	}
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, r.Path(), body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.Endpoint, err)
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
			return nil, fmt.Errorf("%s: %w", r.Endpoint, context.Cause(ctx))
		}
		return nil, fmt.Errorf("%s: %w", r.Endpoint, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, c.maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("%s: read response: %w", r.Endpoint, err)
	}
	if int64(len(b)) > c.maxBody {
		return nil, fmt.Errorf("%s: response larger than %d bytes", r.Endpoint, c.maxBody)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return nil, fmt.Errorf("%s %s: %w", method, r.Endpoint, parseError(res.StatusCode, b))
	}
	return b, nil
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
