package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/boundedfile"
	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/limiter"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/uploader"
	"github.com/apmtel/apmtel/scheduler"
)

const envelopeFlagHelp = "print the whole document an upload would send (stdout), its id and target (stderr)"

// describer reads the source's envelope facts with the configuration's
// Kibana index and fallback Kibana version. Every run captures it once.
func describer(cfg config.Config) uploader.Describer {
	return uploader.Describer{KibanaIndex: cfg.Indices.Kibana, KibanaVersion: cfg.KibanaVersion}
}

// startDescribe reads the source's identity beside the tasks, as a run's
// errand does, rather than after them; the returned function waits for it.
func startDescribe(ctx context.Context, cfg config.Config, source es.Doer, refusals uploader.Refusals) func() (uploader.Source, error) {
	var src uploader.Source
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Queued for the cap at its start, before the tasks that start after it.
		d := describer(cfg)
		d.Refusals = refusals
		src, err = d.Describe(limiter.InTaskOrder(ctx), source, cfg.SearchTimeout)
	}()
	return func() (uploader.Source, error) { <-done; return src, err }
}

// previewEnvelope wraps the telemetry object apm, and the other plugins'
// objects (application_usage, ui_counters), as the upload of the current
// schedule slot's run would: the same Source reads (described, started by
// startDescribe), Build, the document id and the sink's target. The document
// goes to stdout as the result; the id, target and anything Describe could
// not read go to stderr.
//
// runs (nil without Redis) tells whether that run is sealed already: then
// its document went out (or was skipped) and preview names no target.
func previewEnvelope(ctx context.Context, e *env, cfg config.Config, described func() (uploader.Source, error), runs *run.Store, l zerolog.Logger, apm []byte, plugins map[string]map[string]any) ([]byte, error) {
	src, err := described()
	if err != nil {
		return nil, fmt.Errorf("describe source: %w", err)
	}
	now := time.Now()
	objs := map[string]json.RawMessage{}
	for name, obj := range plugins {
		if objs[name], err = json.Marshal(obj); err != nil {
			return nil, err
		}
	}
	doc, err := uploader.Document(src, now, now, apm, objs)
	if err != nil {
		return nil, err
	}
	sink, err := newSink(cfg, l)
	if err != nil {
		return nil, err
	}
	runID := scheduler.ScheduledRunID(scheduler.SlotStart(now, cfg.Interval))
	id := uploader.DocID(src.ClusterUUID, runID)
	fmt.Fprintf(e.stderr, "document id: %s (the run of the current schedule slot)\n", id)
	if r, err := sealedRun(ctx, runs, runID); err == nil {
		fmt.Fprintf(e.stderr, "target: none (not sent: preview); the slot's run %s is %s, its upload %s\n", runID, r.Status, r.Upload)
	} else {
		fmt.Fprintf(e.stderr, "target: %s (not sent: preview)\n", sink.Target(id))
	}
	if !cfg.OptIn {
		fmt.Fprintln(e.stderr, "note: APMTEL_OPT_IN=false, so nothing would be sent")
	}
	for _, m := range src.Missing {
		fmt.Fprintf(e.stderr, "not in the document: %s\n", m)
	}
	return json.Marshal(doc)
}

// sealedRun returns run id when it is sealed (or otherwise ended).
func sealedRun(ctx context.Context, runs *run.Store, id string) (run.Run, error) {
	if runs == nil {
		return run.Run{}, run.ErrNotFound
	}
	r, err := runs.Get(ctx, id)
	if err == nil && !r.Status.Terminal() {
		return r, run.ErrNotFound
	}
	return r, err
}

// newChannelSink is the sink of Kibana's own channel (APMTEL_TELEMETRY_ENDPOINT).
func newChannelSink(cfg config.Config) (uploader.Sink, error) {
	jwks, err := boundedfile.Read(cfg.TelemetryJWKS)
	if err != nil {
		return nil, fmt.Errorf("APMTEL_TELEMETRY_JWKS: %w", err)
	}
	s, err := uploader.NewChannelSink(cfg.TelemetryEndpoint, jwks, cfg.SearchTimeout)
	if err != nil {
		return nil, fmt.Errorf("APMTEL_TELEMETRY_JWKS %s: %w", cfg.TelemetryJWKS, err)
	}
	s.StackVersion = cfg.KibanaVersion
	return s, nil
}
