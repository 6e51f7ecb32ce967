package uploader

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
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
}

// savedObjectTypes are the types Kibana's "kibana" usage collector counts.
var savedObjectTypes = []string{"dashboard", "visualization", "search", "index-pattern", "graph-workspace", "timelion-sheet"}

// Describe reads GET /, _cluster/stats, _nodes/usage, _license and the
// Kibana saved objects. The first three are what Kibana's collection cannot
// do without, so their errors fail Describe (the caller retries); a missing
// license or unreadable saved objects are recorded in Missing instead.
func (dr Describer) Describe(ctx context.Context, d es.Doer, timeout time.Duration) (Source, error) {
	info, err := es.Info(ctx, d, timeout)
	if err != nil {
		return Source{}, err
	}
	src := Source{ClusterUUID: info.ClusterUUID, ClusterName: info.ClusterName, Version: info.Version.Number}
	if src.ClusterStats, err = clusterStats(ctx, d, timeout); err != nil {
		return Source{}, err
	}
	src.License, err = license(ctx, d, timeout)
	if err != nil {
		if !es.IsPermanent(err) {
			return Source{}, err
		}
		// Kibana: "In OSS we'll get a 400 response"; the document then has no license.
		src.Missing = append(src.Missing, err.Error())
	}
	if dr.KibanaIndex != "" {
		k, err := kibanaFacts(ctx, d, timeout, dr.KibanaIndex)
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

// clusterStats is GET _cluster/stats?timeout=60s&include_remotes=true
// (Kibana's call) without _nodes and cluster_name, plus nodes.usage. A
// cluster that rejects include_remotes (OpenSearch, Elasticsearch < 8.16)
// is asked again without it.
func clusterStats(ctx context.Context, d es.Doer, timeout time.Duration) (json.RawMessage, error) {
	req := es.Request{Method: "GET", Endpoint: "_cluster/stats", ClusterWide: true,
		Params: url.Values{"timeout": {"60s"}, "include_remotes": {"true"}}, Timeout: timeout}
	b, err := d.Do(ctx, req)
	var e *es.Error
	if err != nil && asESError(err, &e) && e.Status == 400 && strings.Contains(e.Error(), "include_remotes") {
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
	usage, err := nodesUsage(ctx, d, timeout)
	if err != nil {
		return nil, err
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

// kibanaFacts reads the Kibana version from the ids of the "config" saved
// objects (Kibana writes config:<version> when it starts a new version, so
// the highest is the running one) and counts the saved objects Kibana's
// "kibana" collector counts. A missing index gives no facts, not an error.
func kibanaFacts(ctx context.Context, d es.Doer, timeout time.Duration, index string) (*KibanaFacts, error) {
	params := url.Values{"ignore_unavailable": {"true"}, "allow_no_indices": {"true"}, "expand_wildcards": {"open,hidden"}}
	b, err := d.Do(ctx, es.Request{Method: "POST", Index: []string{index}, Endpoint: "_search", Params: params, Timeout: timeout,
		Body: map[string]any{
			"size": 100, "_source": false, "track_total_hits": false, "timeout": es.FormatTimeout(timeout),
			"query": map[string]any{"terms": map[string]any{"type": []string{"config", "config-global"}}},
		}})
	if err != nil {
		return nil, fmt.Errorf("config saved objects: %w", err)
	}
	var cfgs struct {
		Hits struct {
			Hits []struct {
				ID string `json:"_id"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(b, &cfgs); err != nil {
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
	b, err = d.Do(ctx, es.Request{Method: "POST", Index: []string{index}, Endpoint: "_search", Params: params, Timeout: timeout,
		Body: map[string]any{
			"size": 0, "track_total_hits": false, "timeout": es.FormatTimeout(timeout),
			"query": map[string]any{"terms": map[string]any{"type": savedObjectTypes}},
			"aggs":  map[string]any{"types": map[string]any{"terms": map[string]any{"field": "type", "size": len(savedObjectTypes)}}},
		}})
	if err != nil {
		return k, fmt.Errorf("saved object counts: %w", err)
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
	if err := json.Unmarshal(b, &counts); err != nil {
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
