package faultproxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"sync"
	"time"
)

// Answer is one recorded response.
type Answer struct {
	Status int               `json:"status"`
	Header map[string]string `json:"header,omitempty"`
	Body   []byte            `json:"body"`
}

// Tape holds the answers of a recorded run, keyed by method, path, query
// and a hash of the body, so that a thousand virtual clusters can replay
// one run without the engine.
type Tape struct {
	mu      sync.Mutex
	answers map[string]Answer
}

// NewTape returns an empty tape.
func NewTape() *Tape { return &Tape{answers: map[string]Answer{}} }

// LoadTape reads a tape saved by Save.
func LoadTape(path string) (*Tape, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t := NewTape()
	if err := json.Unmarshal(b, &t.answers); err != nil {
		return nil, fmt.Errorf("tape %s: %w", path, err)
	}
	return t, nil
}

// Save writes the tape as JSON.
func (t *Tape) Save(path string) error {
	t.mu.Lock()
	b, err := json.Marshal(t.answers)
	t.mu.Unlock()
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// Len is the number of recorded answers.
func (t *Tape) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.answers)
}

// volatile matches what changes between two runs of the same query:
// epoch-millisecond numbers and RFC 3339 timestamps (time ranges computed
// from the run's time). They are blanked before the body is hashed.
var volatile = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?|\b\d{12,}\b`)

// TapeKey is the key of a request: method, path, sorted query and the
// hash of its body with volatile times blanked.
func TapeKey(r *http.Request, body []byte) string {
	h := sha256.Sum256(volatile.ReplaceAll(body, []byte("T")))
	return r.Method + " " + r.URL.Path + "?" + r.URL.Query().Encode() + " " + hex.EncodeToString(h[:8])
}

// Recorder forwards to next and records every answer on the tape.
func (t *Tape) Recorder(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.URL.Path) > 9 && r.URL.Path[:9] == "/__proxy/" {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		// Record plain answers: a replay may go to a client that does not
		// take gzip, and identity answers are rewritten.
		r.Header.Del("Accept-Encoding")
		buf := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(buf, r)
		a := Answer{Status: buf.status, Header: map[string]string{}, Body: bytes.Clone(buf.body.Bytes())}
		for _, k := range []string{"Content-Type", "X-Elastic-Product"} {
			if v := buf.header.Get(k); v != "" {
				a.Header[k] = v
			}
		}
		t.mu.Lock()
		t.answers[TapeKey(r, body)] = a
		t.mu.Unlock()
		writeAnswer(w, a)
	})
}

func writeAnswer(w http.ResponseWriter, a Answer) {
	for k, v := range a.Header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(a.Status)
	_, _ = w.Write(a.Body)
}

// Replayer serves a tape's answers, each after Delay (the engine's time a
// benchmark stands for). A request not on the tape gets a 404 error
// answer and is counted as a miss.
type Replayer struct {
	tape  *Tape
	delay time.Duration

	mu           sync.Mutex
	hits, misses int
	lastMiss     string
}

// Replayer returns a handler serving t after delay.
func (t *Tape) Replayer(delay time.Duration) *Replayer { return &Replayer{tape: t, delay: delay} }

// Counts returns the answered and the missed requests, and the key of the last miss.
func (p *Replayer) Counts() (hits, misses int, lastMiss string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hits, p.misses, p.lastMiss
}

func (p *Replayer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	key := TapeKey(r, body)
	p.tape.mu.Lock()
	a, ok := p.tape.answers[key]
	p.tape.mu.Unlock()
	p.mu.Lock()
	if ok {
		p.hits++
	} else {
		p.misses++
		p.lastMiss = key
	}
	p.mu.Unlock()
	if p.delay > 0 {
		t := time.NewTimer(p.delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if !ok {
		writeAnswer(w, Answer{Status: http.StatusNotFound,
			Header: map[string]string{"Content-Type": "application/json", "X-Elastic-Product": "Elasticsearch"},
			Body:   []byte(`{"error":{"type":"not_recorded","reason":"the replay tape has no answer for this request"},"status":404}`)})
		return
	}
	writeAnswer(w, a)
}
