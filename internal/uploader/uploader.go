package uploader

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/apmtel/apmtel/internal/es"
)

// Envelope is the telemetry document.
type Envelope struct {
	ClusterUUID string         `json:"cluster_uuid"`
	ClusterName string         `json:"cluster_name"`
	Timestamp   string         `json:"timestamp"`
	Version     string         `json:"version"`
	Collection  string         `json:"collection"`
	StackStats  map[string]any `json:"stack_stats"`
}

// Source is what the envelope needs to know of the source cluster. It is
// captured once, when a run's first job starts, and stored with the run, so
// that an upload never needs the source cluster: a source that is down at
// upload time cannot fail the upload, and every retry sends the same
// document.
type Source struct {
	ClusterUUID string `json:"cluster_uuid"`
	ClusterName string `json:"cluster_name"`
	Version     string `json:"version"`
}

// Describe reads the source cluster's identity for the envelope.
func Describe(ctx context.Context, d es.Doer, timeout time.Duration) (Source, error) {
	info, err := es.Info(ctx, d, timeout)
	if err != nil {
		return Source{}, err
	}
	return Source{ClusterUUID: info.ClusterUUID, ClusterName: info.ClusterName, Version: info.Version.Number}, nil
}

// Build wraps the telemetry object apm into an envelope.
func Build(src Source, at time.Time, apm json.RawMessage) (Envelope, error) {
	if !json.Valid(apm) {
		return Envelope{}, fmt.Errorf("telemetry object is not valid JSON")
	}
	if src.ClusterUUID == "" {
		return Envelope{}, fmt.Errorf("source cluster has no cluster_uuid")
	}
	return Envelope{
		ClusterUUID: src.ClusterUUID,
		ClusterName: src.ClusterName,
		Timestamp:   at.UTC().Format(time.RFC3339Nano),
		Version:     src.Version,
		Collection:  "local",
		StackStats:  map[string]any{"kibana": map[string]any{"plugins": map[string]any{"apm": apm}}},
	}, nil
}

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
