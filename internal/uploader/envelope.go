package uploader

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"time"
)

// CollectionSource marks apmtel's documents. Kibana writes the title of
// its collection strategy ("local_xpack", or "local" without x-pack); a
// consumer tells apmtel's documents from Kibana's by this field.
const CollectionSource = "apmtel"

// Envelope is the telemetry document: every top-level field of Kibana's
// local collection (get_local_stats + the x-pack license) with Kibana's
// shapes.
type Envelope struct {
	ClusterUUID string `json:"cluster_uuid"`
	ClusterName string `json:"cluster_name"`
	// Timestamp is the collection time as a millisecond ISO string.
	Timestamp string `json:"timestamp"`
	// Version is the Elasticsearch version of the source cluster.
	Version      string          `json:"version"`
	ClusterStats json.RawMessage `json:"cluster_stats,omitempty"`
	// License is left out when the cluster has none, as Kibana does.
	License          json.RawMessage `json:"license,omitempty"`
	Collection       string          `json:"collection"`
	CollectionSource string          `json:"collectionSource"`
	// CacheDetails is what Kibana's collection manager adds to every stats
	// payload (getUsageForCollection).
	CacheDetails CacheDetails `json:"cacheDetails"`
	StackStats   StackStats   `json:"stack_stats"`
}

// CacheDetails tells when the stats were collected and when this copy was
// handed out: Kibana caches a collection and serves it again with a fresh
// fetchedAt; apmtel's "cache" is the sealed run, so updatedAt is the run's
// collection time (the envelope's timestamp) and fetchedAt the time the
// document is built to be sent or shown. Both are millisecond ISO strings.
type CacheDetails struct {
	UpdatedAt string `json:"updatedAt"`
	FetchedAt string `json:"fetchedAt"`
}

// StackStats is stack_stats. Kibana also sends stack_stats.data (its data
// telemetry) and stack_stats.xpack (_xpack/usage); apmtel does not (see
// docs/parity.md).
type StackStats struct {
	Kibana KibanaStats `json:"kibana"`
}

// KibanaStats is stack_stats.kibana as Kibana's handleKibanaStats shapes
// it for one reporting instance.
type KibanaStats struct {
	// Saved-object counts of the "kibana" collector, each {"total": n}.
	Dashboard      *Total `json:"dashboard,omitempty"`
	Visualization  *Total `json:"visualization,omitempty"`
	Search         *Total `json:"search,omitempty"`
	IndexPattern   *Total `json:"index_pattern,omitempty"`
	GraphWorkspace *Total `json:"graph_workspace,omitempty"`
	TimelionSheet  *Total `json:"timelion_sheet,omitempty"`
	// Count and Indices are Kibana's constants for a local collection (one
	// instance, one Kibana index).
	Count   int `json:"count"`
	Indices int `json:"indices"`
	// Versions is [{version, count: 1}] with "-snapshot" removed, as Kibana
	// does; left out when the Kibana version is unknown.
	Versions []VersionCount `json:"versions,omitempty"`
	// Plugins holds the usage collectors' objects: apm, and whatever a later
	// collector adds with AddPlugin.
	Plugins map[string]json.RawMessage `json:"plugins"`
}

// Total is a {"total": n} count.
type Total struct {
	Total int64 `json:"total"`
}

// VersionCount is one element of stack_stats.kibana.versions.
type VersionCount struct {
	Version string `json:"version"`
	Count   int    `json:"count"`
}

// TimestampFormat is JavaScript's Date.toISOString: UTC, milliseconds.
const TimestampFormat = "2006-01-02T15:04:05.000Z"

// Document is the one builder of the telemetry document: the upload, the
// console and `apmtel preview --envelope` all call it (through RunDocument
// for a stored run), so what an operator is shown is what is sent. apm is
// the APM object (a run's snapshot); plugins are the other usage
// collectors' objects (application_usage, ui_counters), which go beside it
// in stack_stats.kibana.plugins; at is the collection time (a run's seal
// time) and fetched the time the document is handed out
// (cacheDetails.fetchedAt): for a run, when its upload became due (its seal
// or re-send), so every attempt writes the same document.
func Document(src Source, at, fetched time.Time, apm json.RawMessage, plugins map[string]json.RawMessage) (Envelope, error) {
	if src.ClusterUUID == "" {
		return Envelope{}, fmt.Errorf("source cluster has no cluster_uuid")
	}
	env := Envelope{
		ClusterUUID:      src.ClusterUUID,
		ClusterName:      src.ClusterName,
		Timestamp:        at.UTC().Format(TimestampFormat),
		Version:          src.Version,
		ClusterStats:     src.ClusterStats,
		License:          src.License,
		Collection:       "local",
		CollectionSource: CollectionSource,
		CacheDetails: CacheDetails{
			UpdatedAt: at.UTC().Format(TimestampFormat),
			FetchedAt: fetched.UTC().Format(TimestampFormat),
		},
		StackStats: StackStats{Kibana: KibanaStats{Count: 1, Indices: 1, Plugins: map[string]json.RawMessage{}}},
	}
	if k := src.Kibana; k != nil {
		if k.Version != "" {
			env.StackStats.Kibana.Versions = []VersionCount{{Version: snapshotSuffix.ReplaceAllString(k.Version, ""), Count: 1}}
		}
		if k.SavedObjects != nil {
			kb := &env.StackStats.Kibana
			for name, dst := range map[string]**Total{"dashboard": &kb.Dashboard, "visualization": &kb.Visualization, "search": &kb.Search,
				"index_pattern": &kb.IndexPattern, "graph_workspace": &kb.GraphWorkspace, "timelion_sheet": &kb.TimelionSheet} {
				*dst = &Total{Total: k.SavedObjects[name]}
			}
		}
	}
	if err := env.AddPlugin("apm", apm); err != nil {
		return Envelope{}, err
	}
	if err := env.addPlugins(plugins); err != nil {
		return Envelope{}, err
	}
	return env, nil
}

var snapshotSuffix = regexp.MustCompile(`(?i)-snapshot`)

// AddPlugin puts a usage collector's object under stack_stats.kibana.plugins.
func (e *Envelope) AddPlugin(name string, obj json.RawMessage) error {
	if !json.Valid(obj) {
		return fmt.Errorf("plugin object %s is not valid JSON", name)
	}
	if e.StackStats.Kibana.Plugins == nil {
		e.StackStats.Kibana.Plugins = map[string]json.RawMessage{}
	}
	e.StackStats.Kibana.Plugins[name] = obj
	return nil
}

// addPlugins adds the objects of the plugins besides apm (a sealed run's
// application_usage, ui_counters). "apm" is refused: the APM object is the
// run's snapshot, passed to Document, and is never replaced.
func (e *Envelope) addPlugins(objs map[string]json.RawMessage) error {
	for _, name := range slices.Sorted(maps.Keys(objs)) {
		if name == "apm" {
			return fmt.Errorf("plugin object apm: the APM object is the snapshot")
		}
		if err := e.AddPlugin(name, objs[name]); err != nil {
			return err
		}
	}
	return nil
}

// KibanaVersion is the version the envelope reports for Kibana, or "".
func (e Envelope) KibanaVersion() string {
	if len(e.StackStats.Kibana.Versions) == 0 {
		return ""
	}
	return e.StackStats.Kibana.Versions[0].Version
}

// Encode is the document's bytes as a file sink writes them and the console
// shows them: indented JSON and a final newline.
func (e Envelope) Encode() ([]byte, error) {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
