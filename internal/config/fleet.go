package config

import (
	"strconv"
	"strings"
	"time"
)

// Fleet is how one deployment collects many source clusters: the clusters
// file, how the clusters' starts spread over a slot, the fleet-wide cap and
// when a sick cluster is backed off. Without a clusters file the deployment
// collects the one cluster of the APMTEL_SOURCE_* settings, as before.
type Fleet struct {
	// ClustersFile is the YAML file listing the source clusters
	// (internal/fleet); "" means the single cluster of APMTEL_SOURCE_*.
	ClustersFile string
	// FleetSpread is the part of each slot over which the clusters' starts
	// are spread (internal/spread); meaningful only when FleetSpreadSet,
	// else the spread is a quarter of the interval (Spread). 0 starts every
	// cluster at the slot's start.
	FleetSpread    time.Duration
	FleetSpreadSet bool
	// FleetConcurrency caps the requests in flight across every cluster of
	// the fleet, taken together with each cluster's own cap; 0: no fleet cap.
	FleetConcurrency int
	// FleetBackoffAfter is the number of consecutive failed runs after which
	// a cluster is skipped by the schedule until its backoff ends.
	FleetBackoffAfter int

	// SourceVarsSet lists the APMTEL_SOURCE_* settings (connection, not the
	// name) given a non-empty value by a variable, a *_FILE or a flag; Load
	// fills it, so that a clusters file beside them is refused
	// (fleet.Exclusive) rather than one of them silently ignored.
	SourceVarsSet []string
}

// Bounds of the fleet settings.
const (
	maxFleetSpread       = 366 * 24 * time.Hour
	maxFleetConcurrency  = 100000
	maxFleetBackoffAfter = 100
	defaultBackoffAfter  = 3
)

// DefaultFleet is no clusters file, the spread unset (a quarter of the
// interval), no fleet-wide cap and a backoff after three failed runs.
func DefaultFleet() Fleet {
	return Fleet{FleetBackoffAfter: defaultBackoffAfter}
}

// Spread is the spread in force for interval: FleetSpread when set, else a
// quarter of the interval (spread.DefaultSpread).
func (f Fleet) Spread(interval time.Duration) time.Duration {
	if f.FleetSpreadSet {
		return f.FleetSpread
	}
	return interval / 4
}

// Validate checks the bounds; the spread against the interval is checked
// by Config.Validate, which knows both.
func (f Fleet) Validate() error {
	var p problems
	if f.ClustersFile != "" && strings.TrimSpace(f.ClustersFile) == "" {
		p.add("APMTEL_CLUSTERS_FILE", "is blank")
	}
	if f.FleetSpreadSet {
		p.within("APMTEL_FLEET_SPREAD", f.FleetSpread, 0, maxFleetSpread)
	}
	p.bound("APMTEL_FLEET_CONCURRENCY", int64(f.FleetConcurrency), 0, maxFleetConcurrency)
	p.bound("APMTEL_FLEET_BACKOFF_AFTER", int64(f.FleetBackoffAfter), 1, maxFleetBackoffAfter)
	return p.err()
}

// spreadWithin refuses a spread as long as the interval: some clusters
// would then start in the next slot.
func (f Fleet) spreadWithin(interval time.Duration) error {
	var p problems
	if f.FleetSpreadSet && f.FleetSpread >= 0 && f.FleetSpread >= interval {
		p.add("APMTEL_FLEET_SPREAD", "%s must be shorter than APMTEL_INTERVAL %s", FormatDuration(f.FleetSpread), FormatDuration(interval))
	}
	return p.err()
}

// noteSource records that option o was given the value v, when o is one of
// the source cluster's connection settings.
func (f *Fleet) noteSource(o Option, v string) {
	if o.Group != GroupSource || !strings.HasPrefix(o.Env, "APMTEL_SOURCE_") || strings.TrimSpace(v) == "" {
		return
	}
	if b, err := strconv.ParseBool(v); o.Kind() == KindBool && err == nil && !b {
		return // APMTEL_SOURCE_INSECURE=false says nothing about a cluster
	}
	for _, e := range f.SourceVarsSet {
		if e == o.Env {
			return
		}
	}
	f.SourceVarsSet = append(f.SourceVarsSet, o.Env)
}
