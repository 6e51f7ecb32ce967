package es

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Request is one call to Elasticsearch.
type Request struct {
	// Method is the HTTP method; GET when empty.
	Method string `json:"method"`
	// Index lists the targets; they are joined with commas into the path.
	Index []string `json:"index,omitempty"`
	// Endpoint follows the index in the path, e.g. "_search" or "_stats".
	Endpoint string `json:"endpoint"`
	// ClusterWide marks a request without index (GET /, _ml). It must be set
	// explicitly so that an empty Index is never an accident.
	ClusterWide bool `json:"cluster_wide,omitempty"`
	// Params are the query-string parameters.
	Params url.Values `json:"params,omitempty"`
	// Body is marshalled to JSON when not nil.
	Body any `json:"body,omitempty"`
	// NDJSON is sent as is (bulk requests) when Body is nil.
	NDJSON []byte `json:"-"`
	// Timeout bounds the request on the client side; required.
	Timeout time.Duration `json:"-"`
	// OpaqueID is sent as X-Opaque-Id, so the cluster's tasks API and slow
	// logs show which run and task a search belongs to.
	OpaqueID string `json:"-"`
}

// Path returns the URL path and query of r.
func (r Request) Path() string {
	var b strings.Builder
	if len(r.Index) > 0 {
		b.WriteString("/")
		b.WriteString(strings.Join(r.Index, ","))
	}
	if r.Endpoint != "" || len(r.Index) == 0 {
		b.WriteString("/")
		b.WriteString(r.Endpoint)
	}
	if len(r.Params) > 0 {
		b.WriteString("?")
		b.WriteString(r.Params.Encode())
	}
	return b.String()
}

// Validate rejects requests that would scan every index or never time out.
func (r Request) Validate() error {
	if r.Timeout <= 0 {
		return fmt.Errorf("request %s: no timeout", r.Endpoint)
	}
	if len(r.Index) == 0 && !r.ClusterWide {
		return fmt.Errorf("request %s: no index (set ClusterWide for cluster-level calls)", r.Endpoint)
	}
	for _, ix := range r.Index {
		if strings.TrimSpace(ix) == "" || strings.Contains(ix, "/") {
			return fmt.Errorf("request %s: invalid index %q", r.Endpoint, ix)
		}
	}
	return nil
}

// Search builds a search on indices; ignore_unavailable and allow_no_indices
// are set so a missing index reads as "no data", never as a failed task.
func Search(indices []string, body map[string]any, timeout time.Duration) Request {
	body["timeout"] = FormatTimeout(timeout)
	return Request{
		Method:   "POST",
		Index:    indices,
		Endpoint: "_search",
		Params:   url.Values{"ignore_unavailable": {"true"}, "allow_no_indices": {"true"}},
		Body:     body,
		Timeout:  timeout,
	}
}

// FormatTimeout renders d in Elasticsearch's time-unit syntax.
func FormatTimeout(d time.Duration) string {
	switch {
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	default:
		return fmt.Sprintf("%dms", d/time.Millisecond)
	}
}

// RequestTimeoutError is the cause of a request that ran out of its own
// Timeout (as opposed to its caller's deadline), so callers can say which
// deadline fired. It matches context.DeadlineExceeded.
type RequestTimeoutError struct{ Timeout time.Duration }

func (e *RequestTimeoutError) Error() string {
	return fmt.Sprintf("request timed out after %s", e.Timeout)
}

// Is makes errors.Is(err, context.DeadlineExceeded) hold.
func (e *RequestTimeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// IsRequestTimeout reports whether err ended because a request's own timeout fired.
func IsRequestTimeout(err error) bool {
	var e *RequestTimeoutError
	return errors.As(err, &e)
}

// Error is a non-2xx answer from Elasticsearch.
type Error struct {
	Status int
	Type   string
	Reason string
}

func (e *Error) Error() string {
	if e.Type != "" {
		return fmt.Sprintf("elasticsearch: %d %s: %s", e.Status, e.Type, e.Reason)
	}
	if e.Reason != "" {
		return fmt.Sprintf("elasticsearch: %d: %s", e.Status, e.Reason)
	}
	return fmt.Sprintf("elasticsearch: status %d", e.Status)
}

// Permanent reports whether retrying cannot help (a bad request, missing
// resource or refused authorization), as opposed to 429 and 5xx.
func (e *Error) Permanent() bool {
	return e.Status >= 400 && e.Status < 500 && e.Status != 408 && e.Status != 429
}

// IsPermanent reports whether err is an Elasticsearch error that retrying
// cannot fix (a permanent status, an answer over the size bound).
func IsPermanent(err error) bool {
	var e *Error
	var tl *TooLargeError
	return errors.As(err, &e) && e.Permanent() || errors.As(err, &tl)
}

// IsNotFound reports whether err is a 404.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == 404
}

func parseError(status int, body []byte) *Error {
	e := &Error{Status: status}
	var env struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil && len(env.Error) > 0 {
		var obj struct {
			Type      string `json:"type"`
			Reason    string `json:"reason"`
			RootCause []struct {
				Type   string `json:"type"`
				Reason string `json:"reason"`
			} `json:"root_cause"`
		}
		if json.Unmarshal(env.Error, &obj) == nil {
			e.Type, e.Reason = obj.Type, obj.Reason
			if e.Reason == "" && len(obj.RootCause) > 0 {
				e.Reason = obj.RootCause[0].Reason
			}
		} else {
			var s string
			_ = json.Unmarshal(env.Error, &s)
			e.Reason = s
		}
	}
	e.Reason = truncate(e.Reason, 500)
	return e
}
