package fleet

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/config"
)

// FromConfig returns the clusters of a worker or scheduler process: a
// Watcher of APMTEL_CLUSTERS_FILE when it is set, else the Static Set of
// the one APMTEL_SOURCE_* cluster named APMTEL_SOURCE_NAME. A clusters file
// beside APMTEL_SOURCE_* settings, a file refused at start or a bad source
// name is a configuration error (*config.UsageError). A Watcher does not
// poll by itself: the process runs Watch.
func FromConfig(cfg config.Config, log zerolog.Logger) (Source, error) {
	if err := Exclusive(cfg.ClustersFile, cfg.SourceVarsSet); err != nil {
		return nil, &config.UsageError{Err: err}
	}
	if cfg.ClustersFile != "" {
		w, err := NewWatcher(cfg.ClustersFile, log)
		if err != nil {
			return nil, &config.UsageError{Err: fmt.Errorf("APMTEL_CLUSTERS_FILE: %w", err)}
		}
		return w, nil
	}
	s, err := FromSource(cfg.SourceName, cfg.Source)
	if err != nil {
		return nil, &config.UsageError{Err: err}
	}
	return Static(s), nil
}

// Watch keeps src current until ctx ends when it is a Watcher (polling
// every interval, DefaultPollInterval when 0, and on SIGHUP), and returns
// at once for a Static Source.
func Watch(ctx context.Context, src Source, interval time.Duration) {
	if w, ok := src.(*Watcher); ok {
		w.Run(ctx, interval)
	}
}
