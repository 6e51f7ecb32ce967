package uploader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apmtel/apmtel/internal/es"
)

// Source is what the envelope needs to know of the source cluster. It is
// captured once, when a run's first job starts, and stored with the run, so
// that an upload never needs the source cluster: a source that is down at
// upload time cannot fail the upload, and every retry sends the same
// document.
type Source struct {
	ClusterUUID string `json:"cluster_uuid"`
	ClusterName string `json:"cluster_name"`
	Version     string `json:"version"`
	// ClusterStats is GET _cluster/stats trimmed as Kibana trims it (without
	// _nodes and cluster_name), with nodes.usage from GET _nodes/usage.
	ClusterStats json.RawMessage `json:"cluster_stats,omitempty"`
	// License is the "license" object of GET _license?local=true; nil when
	// the cluster has none (OpenSearch, Elasticsearch without x-pack), and
	// then, as in Kibana, the envelope has no license.
	License json.RawMessage `json:"license,omitempty"`
	// Kibana holds what the saved objects (or the configuration) tell of
	// Kibana; nil when nothing is known.
	Kibana *KibanaFacts `json:"kibana,omitempty"`
	// Missing lists what could not be read and why (for the run's record;
	// never sent).
	Missing []string `json:"missing,omitempty"`
}

// KibanaFacts are the Kibana values of the envelope that apmtel can learn
// without being Kibana.
type KibanaFacts struct {
	// Version is the Kibana version, from the newest "config" saved object
	// (id config:<version>) or from APMTEL_KIBANA_VERSION.
	Version string `json:"version,omitempty"`
	// VersionFrom says where Version came from: "saved_objects" or "config".
	VersionFrom string `json:"version_from,omitempty"`
	// SavedObjects are the counts Kibana's "kibana" usage collector reports
	// (dashboard, visualization, search, index_pattern, graph_workspace,
	// timelion_sheet), keyed by the snake-cased type.
	SavedObjects map[string]int64 `json:"saved_objects,omitempty"`
}

// Describer reads a Source. KibanaIndex is the pattern of Kibana's
// saved-object indices (APMTEL_INDICES_KIBANA); KibanaVersion is the
// configured fallback version (APMTEL_KIBANA_VERSION).
type Describer struct {
	KibanaIndex   string
	KibanaVersion string
	// Refusals, when set, remembers per source cluster what it refused once
	// (a parameter it does not know), so a later Describe does not ask again;
	// nil asks every time.
	Refusals Refusals
}

// Refusals remembers what a source cluster refused. A lookup or a note that
// fails (Redis down) is treated as "not known": the request is merely sent
// as if for the first time.
type Refusals interface {
	Refused(ctx context.Context, what string) bool
	NoteRefused(ctx context.Context, what string)
}

// RefusedIncludeRemotes names the refusal of _cluster/stats?include_remotes
// (OpenSearch, Elasticsearch < 8.16).
const RefusedIncludeRemotes = "cluster_stats.include_remotes"

// savedObjectTypes are the types Kibana's "kibana" usage collector counts.
var savedObjectTypes = []string{"dashboard", "visualization", "search", "index-pattern", "graph-workspace", "timelion-sheet"}

// Describe reads GET /, _cluster/stats, _nodes/usage, _license and the
// Kibana saved objects. The first three are what Kibana's collection cannot
// do without, so their errors fail Describe (the caller retries); a missing
// license or unreadable saved objects are recorded in Missing instead.
//
// The requests do not depend on each other, so they are sent at once (each
// still takes its slot of the cluster-wide cap): one round trip instead of
// six or seven in a row, each of which queued behind the other tasks'
// requests. A failure of one of the three required ones cancels the rest.
func (dr Describer) Describe(ctx context.Context, d es.Doer, timeout time.Duration) (Source, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg                    sync.WaitGroup
		info                  es.ClusterInfo
		stats, usage, lic     json.RawMessage
		cfgs, counts          []byte
		errInfo, errStats     error
		errUsage, errLic      error
		errConfigs, errCounts error
	)
	// required cancels the others when a required request fails: the
	// Source cannot be built without it.
	required := func(err *error, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if *err = f(); *err != nil {
				cancel(errSibling)
			}
		}()
	}
	optional := func(err *error, f func() error) {
		wg.Add(1)
		go func() { defer wg.Done(); *err = f() }()
	}
	required(&errInfo, func() (err error) { info, err = es.Info(ctx, d, timeout); return err })
	required(&errStats, func() (err error) { stats, err = dr.clusterStats(ctx, d, timeout); return err })
	required(&errUsage, func() (err error) { usage, err = nodesUsage(ctx, d, timeout); return err })
	optional(&errLic, func() (err error) { lic, err = license(ctx, d, timeout); return err })
	if dr.KibanaIndex != "" {
		optional(&errConfigs, func() (err error) { cfgs, err = configSearch(ctx, d, timeout, dr.KibanaIndex); return err })
		optional(&errCounts, func() (err error) { counts, err = countSearch(ctx, d, timeout, dr.KibanaIndex); return err })
	}
	wg.Wait()
	if err := firstOwn(errInfo, errStats, errUsage); err != nil {
		return Source{}, err
	}
	src := Source{ClusterUUID: info.ClusterUUID, ClusterName: info.ClusterName, Version: info.Version.Number}
	var err error
	if src.ClusterStats, err = withUsage(stats, usage); err != nil {
		return Source{}, err
	}
	src.License = lic
	if errLic != nil {
		if !es.IsPermanent(errLic) {
			return Source{}, errLic
		}
		// Kibana: "In OSS we'll get a 400 response"; the document then has no license.
		src.Missing = append(src.Missing, errLic.Error())
	}
	if dr.KibanaIndex != "" {
		k, err := kibanaFacts(cfgs, errConfigs, counts, errCounts, dr.KibanaIndex)
		if err != nil {
			src.Missing = append(src.Missing, "kibana saved objects: "+err.Error())
		}
		src.Kibana = k
	}
	if (src.Kibana == nil || src.Kibana.Version == "") && dr.KibanaVersion != "" {
		if src.Kibana == nil {
			src.Kibana = &KibanaFacts{}
		}
		src.Kibana.Version, src.Kibana.VersionFrom = dr.KibanaVersion, "config"
	}
	if src.Kibana == nil || src.Kibana.Version == "" {
		src.Missing = append(src.Missing, "kibana version: no config saved object and APMTEL_KIBANA_VERSION unset; stack_stats.kibana.versions left out")
	}
	return src, nil
}

// errSibling is the cause Describe cancels its other requests with when a
// required one failed.
var errSibling = errors.New("another request of the source identity failed")

// firstOwn returns the first error, in the order given, that is not merely
// the cancellation caused by another's failure, so Describe reports the
// same error it would report sending its requests in order.
func firstOwn(errs ...error) error {
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if !errors.Is(err, errSibling) && !errors.Is(err, context.Canceled) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// clusterStats is GET _cluster/stats?timeout=60s&include_remotes=true
// (Kibana's call) without _nodes and cluster_name. A cluster that rejects
// include_remotes (OpenSearch, Elasticsearch < 8.16) is asked again without
// it, and the refusal is noted (Refusals) so later runs ask without it at once.
func (dr Describer) clusterStats(ctx context.Context, d es.Doer, timeout time.Duration) (json.RawMessage, error) {
	req := es.Request{Method: "GET", Endpoint: "_cluster/stats", ClusterWide: true,
		Params: url.Values{"timeout": {"60s"}, "include_remotes": {"true"}}, Timeout: timeout}
	if dr.Refusals != nil && dr.Refusals.Refused(ctx, RefusedIncludeRemotes) {
		req.Params.Del("include_remotes")
	}
	b, err := d.Do(ctx, req)
	var e *es.Error
	if err != nil && req.Params.Has("include_remotes") && asESError(err, &e) && e.Status == 400 && strings.Contains(e.Error(), "include_remotes") {
		if dr.Refusals != nil {
			dr.Refusals.NoteRefused(ctx, RefusedIncludeRemotes)
		}
		req.Params.Del("include_remotes")
		b, err = d.Do(ctx, req)
	}
	if err != nil {
		return nil, fmt.Errorf("cluster stats: %w", err)
	}
	var stats map[string]json.RawMessage
	if err := json.Unmarshal(b, &stats); err != nil {
		return nil, fmt.Errorf("cluster stats: decode: %w", err)
	}
	delete(stats, "_nodes")
	delete(stats, "cluster_name")
	return json.Marshal(stats)
}

// withUsage adds nodes.usage (from _nodes/usage) to the trimmed cluster stats.
func withUsage(statsJSON, usage json.RawMessage) (json.RawMessage, error) {
	var stats map[string]json.RawMessage
	if err := json.Unmarshal(statsJSON, &stats); err != nil {
		return nil, fmt.Errorf("cluster stats: decode: %w", err)
	}
	var nodes map[string]json.RawMessage
	if raw, ok := stats["nodes"]; ok {
		if err := json.Unmarshal(raw, &nodes); err != nil {
			return nil, fmt.Errorf("cluster stats: decode nodes: %w", err)
		}
	}
	if nodes == nil {
		nodes = map[string]json.RawMessage{}
	}
	nodes["usage"] = usage
	var err error
	if stats["nodes"], err = json.Marshal(nodes); err != nil {
		return nil, err
	}
	return json.Marshal(stats)
}

// nodesUsage is GET _nodes/usage?timeout=30s as Kibana reshapes it:
// {"nodes": [{...usage, "node_id": id}]}, ordered by node id.
func nodesUsage(ctx context.Context, d es.Doer, timeout time.Duration) (json.RawMessage, error) {
	b, err := d.Do(ctx, es.Request{Method: "GET", Endpoint: "_nodes/usage", ClusterWide: true,
		Params: url.Values{"timeout": {"30s"}}, Timeout: timeout})
	if err != nil {
		return nil, fmt.Errorf("nodes usage: %w", err)
	}
	var res struct {
		Nodes map[string]map[string]json.RawMessage `json:"nodes"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("nodes usage: decode: %w", err)
	}
	ids := make([]string, 0, len(res.Nodes))
	for id := range res.Nodes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	list := make([]map[string]json.RawMessage, 0, len(ids))
	for _, id := range ids {
		n := res.Nodes[id]
		if n == nil {
			n = map[string]json.RawMessage{}
		}
		n["node_id"], _ = json.Marshal(id)
		list = append(list, n)
	}
	return json.Marshal(map[string]any{"nodes": list})
}

// license is the "license" object of GET _license?local=true, Kibana's
// call (the node's local copy; cheaper than the master's and good enough).
func license(ctx context.Context, d es.Doer, timeout time.Duration) (json.RawMessage, error) {
	b, err := d.Do(ctx, es.Request{Method: "GET", Endpoint: "_license", ClusterWide: true,
		Params: url.Values{"local": {"true"}}, Timeout: timeout})
	if err != nil {
		return nil, fmt.Errorf("license: %w", err)
	}
	var res struct {
		License json.RawMessage `json:"license"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("license: decode: %w", err)
	}
	if len(res.License) == 0 || string(res.License) == "null" {
		return nil, nil
	}
	return res.License, nil
}

var configID = regexp.MustCompile(`^config(?:-global)?:([0-9]+)\.([0-9]+)\.([0-9]+)(-[0-9A-Za-z.-]+)?$`)

// savedObjectParams are the parameters of both saved-object searches: a
// missing index is no error.
func savedObjectParams() url.Values {
	return url.Values{"ignore_unavailable": {"true"}, "allow_no_indices": {"true"}, "expand_wildcards": {"open,hidden"}}
}

// configSearch asks for the ids of the "config" saved objects.
func configSearch(ctx context.Context, d es.Doer, timeout time.Duration, index string) ([]byte, error) {
	b, err := d.Do(ctx, es.Request{Method: "POST", Index: []string{index}, Endpoint: "_search", Params: savedObjectParams(), Timeout: timeout,
		Body: map[string]any{
			"size": 100, "_source": false, "track_total_hits": false, "timeout": es.FormatTimeout(timeout),
			"query": map[string]any{"terms": map[string]any{"type": []string{"config", "config-global"}}},
		}})
	if err != nil {
		return nil, fmt.Errorf("config saved objects: %w", err)
	}
	return b, nil
}

// countSearch counts the saved objects Kibana's "kibana" collector counts.
func countSearch(ctx context.Context, d es.Doer, timeout time.Duration, index string) ([]byte, error) {
	b, err := d.Do(ctx, es.Request{Method: "POST", Index: []string{index}, Endpoint: "_search", Params: savedObjectParams(), Timeout: timeout,
		Body: map[string]any{
			"size": 0, "track_total_hits": false, "timeout": es.FormatTimeout(timeout),
			"query": map[string]any{"terms": map[string]any{"type": savedObjectTypes}},
			"aggs":  map[string]any{"types": map[string]any{"terms": map[string]any{"field": "type", "size": len(savedObjectTypes)}}},
		}})
	if err != nil {
		return nil, fmt.Errorf("saved object counts: %w", err)
	}
	return b, nil
}

// kibanaFacts reads the Kibana version from the ids of the "config" saved
// objects (Kibana writes config:<version> when it starts a new version, so
// the highest is the running one) and the counts of the saved objects
// Kibana's "kibana" collector counts, from the answers (or errors) of
// configSearch and countSearch. A missing index gives no facts, not an error.
func kibanaFacts(cfgsBody []byte, cfgErr error, countsBody []byte, countErr error, index string) (*KibanaFacts, error) {
	if cfgErr != nil {
		return nil, cfgErr
	}
	var cfgs struct {
		Hits struct {
			Hits []struct {
				ID string `json:"_id"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(cfgsBody, &cfgs); err != nil {
		return nil, fmt.Errorf("config saved objects: decode: %w", err)
	}
	k := &KibanaFacts{}
	var best [3]int
	for _, h := range cfgs.Hits.Hits {
		m := configID.FindStringSubmatch(h.ID)
		if m == nil {
			continue
		}
		var v [3]int
		for i := range v {
			v[i], _ = strconv.Atoi(m[i+1])
		}
		if k.Version == "" || v[0] > best[0] || v[0] == best[0] && (v[1] > best[1] || v[1] == best[1] && v[2] > best[2]) {
			best, k.Version, k.VersionFrom = v, strings.TrimPrefix(strings.TrimPrefix(h.ID, "config-global:"), "config:"), "saved_objects"
		}
	}
	if countErr != nil {
		return k, countErr
	}
	var counts struct {
		Shards struct {
			Total int `json:"total"`
		} `json:"_shards"`
		Aggregations struct {
			Types struct {
				Buckets []struct {
					Key      string `json:"key"`
					DocCount int64  `json:"doc_count"`
				} `json:"buckets"`
			} `json:"types"`
		} `json:"aggregations"`
	}
	if err := json.Unmarshal(countsBody, &counts); err != nil {
		return k, fmt.Errorf("saved object counts: decode: %w", err)
	}
	if counts.Shards.Total == 0 && k.Version == "" {
		return nil, fmt.Errorf("no saved-object index matches %s", index)
	}
	k.SavedObjects = map[string]int64{}
	for _, t := range savedObjectTypes {
		k.SavedObjects[strings.ReplaceAll(t, "-", "_")] = 0
	}
	for _, bk := range counts.Aggregations.Types.Buckets {
		k.SavedObjects[strings.ReplaceAll(bk.Key, "-", "_")] = bk.DocCount
	}
	return k, nil
}
