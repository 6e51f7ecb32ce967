package uploader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/apmtel/apmtel/internal/run"
)

// ErrUnbuildable marks a stored run whose document can never be built (its
// snapshot is gone, its stored identity or an object is corrupt): retrying
// cannot help.
var ErrUnbuildable = errors.New("the document cannot be built")

// ErrNoSource says that no job of the run captured the source cluster's
// identity, so the document is not known until someone reads it.
var ErrNoSource = errors.New("no job of the run captured the source cluster's identity")

// RunDocument builds the document of sealed run r from what the run store
// holds: the captured source identity, the snapshot, the other plugins'
// objects, the seal time and the time the upload became due
// (run.Run.UploadSince). It returns the document id with it. The upload and
// the console both call it, so the console shows the exact document the
// upload sends, and every attempt sends the same one.
func RunDocument(ctx context.Context, st *run.Store, r run.Run) (string, Envelope, error) {
	if len(r.SourceInfo) == 0 {
		return "", Envelope{}, ErrNoSource
	}
	var src Source
	if err := json.Unmarshal(r.SourceInfo, &src); err != nil {
		return "", Envelope{}, fmt.Errorf("%w: stored source identity: %w", ErrUnbuildable, err)
	}
	snap, err := st.Snapshot(ctx, r.ID)
	if errors.Is(err, run.ErrNotFound) {
		return "", Envelope{}, fmt.Errorf("%w: %w", ErrUnbuildable, err)
	}
	if err != nil {
		return "", Envelope{}, err
	}
	plugins, err := st.Plugins(ctx, r.ID)
	if err != nil {
		return "", Envelope{}, err
	}
	env, err := Document(src, r.SealedAt, r.UploadSince(), snap, plugins)
	if err != nil {
		return "", Envelope{}, fmt.Errorf("%w: %w", ErrUnbuildable, err)
	}
	return DocID(src.ClusterUUID, r.ID), env, nil
}
