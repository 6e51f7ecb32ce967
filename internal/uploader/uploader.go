package uploader

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/run"
)

// DocID is the telemetry document's id for a run of a cluster.
func DocID(clusterUUID, runID string) string { return clusterUUID + ":" + runID }

// Sink receives envelopes.
type Sink interface {
	// Put writes env under id and says where it went and in which state:
	// each sink knows what its success means (uploaded, written).
	Put(ctx context.Context, id string, env Envelope) (Delivery, error)
	// Target says where Put would put a document with id.
	Target(id string) string
}

// Delivery is what a successful Put reached.
type Delivery struct {
	// Where names the document's place (index/id, file, URL).
	Where string
	// State is the upload state this reached: run.UploadUploaded or run.UploadWritten.
	State run.UploadState
	// Note qualifies it, e.g. "already delivered" after a conflict.
	Note string
}

// ESSink indexes into an Elasticsearch index.
type ESSink struct {
	ES      es.Doer
	Index   string
	Timeout time.Duration
}

// AlreadyDelivered is the Note of a document the target already held.
const AlreadyDelivered = "already delivered"

// Put creates env with id. The id and the document are fixed per run (the
// cluster's uuid, the run id, the seal time), so a conflict (409) means an
// earlier attempt stored it — one that timed out on our side after the
// target had written it, or a re-send. It is delivered, never a failure
// asking for another re-send: the document is read back to confirm when
// the target allows reads, and trusted when it refuses them (a create-only
// key). Creating, not indexing, also works on targets that only allow
// creates.
func (s ESSink) Put(ctx context.Context, id string, env Envelope) (Delivery, error) {
	where := s.Index + "/" + id
	_, err := s.ES.Do(ctx, es.Request{
		Method:   "PUT",
		Index:    []string{s.Index},
		Endpoint: "_doc/" + url.PathEscape(id),
		Params:   url.Values{"refresh": {"wait_for"}, "op_type": {"create"}},
		Body:     env,
		Timeout:  s.Timeout,
	})
	var ee *es.Error
	if errors.As(err, &ee) && ee.Status == http.StatusConflict {
		return s.confirm(ctx, id, where)
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("index telemetry document %s: %w", id, err)
	}
	return Delivery{Where: where, State: run.UploadUploaded}, nil
}

// confirm reads back the document a conflict says exists.
func (s ESSink) confirm(ctx context.Context, id, where string) (Delivery, error) {
	_, err := s.ES.Do(ctx, es.Request{Index: []string{s.Index}, Endpoint: "_doc/" + url.PathEscape(id),
		Params: url.Values{"_source": {"false"}}, Timeout: s.Timeout})
	var ee *es.Error
	switch {
	case err == nil:
		return Delivery{Where: where, State: run.UploadUploaded, Note: AlreadyDelivered}, nil
	case es.IsNotFound(err):
		return Delivery{}, fmt.Errorf("index telemetry document %s: conflict (409), but the document cannot be found", id)
	case errors.As(err, &ee) && ee.Permanent():
		// The target refuses reads (a create-only key): trust the conflict.
		return Delivery{Where: where, State: run.UploadUploaded, Note: AlreadyDelivered + " (the target refuses reading it back: " + ee.Error() + ")"}, nil
	}
	return Delivery{}, fmt.Errorf("index telemetry document %s: conflict (409); reading it back: %w", id, err)
}

// Target names the index and id.
func (s ESSink) Target(id string) string { return s.Index + "/_doc/" + id }

// FileSink writes one JSON file per document under Dir.
type FileSink struct{ Dir string }

// Put writes env (Encode) to Dir/<id>.json atomically (write then rename).
func (s FileSink) Put(_ context.Context, id string, env Envelope) (Delivery, error) {
	if err := os.MkdirAll(s.Dir, 0o750); err != nil {
		return Delivery{}, fmt.Errorf("payload dir: %w", err)
	}
	b, err := env.Encode()
	if err != nil {
		return Delivery{}, err
	}
	name := s.Target(id)
	tmp, err := os.CreateTemp(s.Dir, ".payload-*")
	if err != nil {
		return Delivery{}, err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return Delivery{}, err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return Delivery{}, err
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return Delivery{}, err
	}
	return Delivery{Where: name, State: run.UploadWritten}, nil
}

// Target names the file.
func (s FileSink) Target(id string) string { return filepath.Join(s.Dir, safeName(id)+".json") }

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
