package config

import (
	"regexp"
	"time"

	"github.com/apmtel/apmtel/internal/keys"
)

// SourceCluster is one cluster apmtel collects from: how to reach it, its
// name in Redis keys, its APM index patterns and how hard to query it. It
// is one struct so that a fleet can hold a list of them.
type SourceCluster struct {
	// Source is how to reach the cluster holding the APM data.
	Source Cluster
	// SourceName names the source cluster in Redis keys and job ids
	// ("{<name>}" hash tag), so that one Redis can serve many source clusters.
	SourceName string
	// KibanaVersion is the Kibana version the envelope reports when the
	// source's saved objects do not tell it (stack_stats.kibana.versions,
	// the X-Elastic-Stack-Version header).
	KibanaVersion string
	// Indices are the cluster's APM index patterns.
	Indices Indices
	// SearchTimeout bounds one request to the source cluster; it is also sent
	// as the search body's shard-level "timeout" (Kibana's bodies say 5m).
	SearchTimeout time.Duration
	// SearchConcurrency caps the requests all workers together send to the
	// source cluster at once (a semaphore in Redis); 0 disables the cap.
	SearchConcurrency int
	// SearchMaxAnswerMB bounds one answer of the source cluster, in MiB: a
	// worker holds an answer about twice over while decoding it
	// (docs/benchmarks.md), so this bounds its memory per request in flight.
	SearchMaxAnswerMB int
}

// Bounds of the source settings: a search below 10 ms cannot succeed, and a
// cap above 1024 is no cap.
const (
	minSearchTimeout     = 10 * time.Millisecond
	maxSearchTimeout     = 24 * time.Hour
	maxSearchConcurrency = 1024
)

var kibanaVersion = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`)

// DefaultSourceCluster is the "default" source with Kibana's index patterns
// and search timeout, and a cap of four requests at once.
func DefaultSourceCluster() SourceCluster {
	return SourceCluster{
		SourceName:        keys.DefaultSource,
		Indices:           DefaultIndices(),
		SearchTimeout:     5 * time.Minute,
		SearchConcurrency: 4,
		SearchMaxAnswerMB: 64,
	}
}

// Validate checks the connection, the name, the patterns and the bounds.
func (s SourceCluster) Validate() error {
	var p problems
	p.cluster("APMTEL_SOURCE", s.Source)
	if err := keys.ValidSource(s.SourceName); err != nil {
		p.add("APMTEL_SOURCE_NAME", "%v", err)
	}
	if s.KibanaVersion != "" && !kibanaVersion.MatchString(s.KibanaVersion) {
		p.add("APMTEL_KIBANA_VERSION", "%q is not a version like 9.2.0", s.KibanaVersion)
	}
	if err := s.Indices.Validate(); err != nil {
		p = append(p, err)
	}
	p.within("APMTEL_SEARCH_TIMEOUT", s.SearchTimeout, minSearchTimeout, maxSearchTimeout)
	p.bound("APMTEL_SEARCH_CONCURRENCY", int64(s.SearchConcurrency), 0, maxSearchConcurrency)
	p.bound("APMTEL_SEARCH_MAX_ANSWER_MB", int64(s.SearchMaxAnswerMB), 1, 1024)
	return p.err()
}

// cluster checks one cluster's URLs and credentials.
func (p *problems) cluster(env string, c Cluster) {
	p.urls(env+"_URL", c.URLs)
	if c.Username != "" && c.Password == "" {
		p.add(env+"_PASSWORD", "must be set with %s_USERNAME", env)
	}
}
