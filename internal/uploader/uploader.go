package uploader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/apmtel/apmtel/internal/es"
)

// DocID is the telemetry document's id for a run of a cluster.
func DocID(clusterUUID, runID string) string { return clusterUUID + ":" + runID }

// Sink receives envelopes.
type Sink interface {
	// Put writes env under id and returns where it went.
	Put(ctx context.Context, id string, env Envelope) (string, error)
}

// ESSink indexes into an Elasticsearch index.
type ESSink struct {
	ES      es.Doer
	Index   string
	Timeout time.Duration
}

// Put indexes env with id (an index operation, so a repeat replaces, never adds).
func (s ESSink) Put(ctx context.Context, id string, env Envelope) (string, error) {
	_, err := s.ES.Do(ctx, es.Request{
		Method:   "PUT",
		Index:    []string{s.Index},
		Endpoint: "_doc/" + url.PathEscape(id),
		Params:   url.Values{"refresh": {"wait_for"}},
		Body:     env,
		Timeout:  s.Timeout,
	})
	if err != nil {
		return "", fmt.Errorf("index telemetry document %s: %w", id, err)
	}
	return s.Index + "/" + id, nil
}

// FileSink writes one JSON file per document under Dir.
type FileSink struct{ Dir string }

// Put writes env to Dir/<id>.json atomically (write then rename).
func (s FileSink) Put(_ context.Context, id string, env Envelope) (string, error) {
	if err := os.MkdirAll(s.Dir, 0o750); err != nil {
		return "", fmt.Errorf("payload dir: %w", err)
	}
	b, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return "", err
	}
	name := filepath.Join(s.Dir, safeName(id)+".json")
	tmp, err := os.CreateTemp(s.Dir, ".payload-*")
	if err != nil {
		return "", err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return "", err
	}
	return name, nil
}

func safeName(id string) string {
	b := []byte(id)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}

func asESError(err error, target **es.Error) bool { return errors.As(err, target) }
