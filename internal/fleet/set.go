package fleet

import (
	"fmt"
	"slices"
	"time"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/keys"
)

// Origin says where a Set came from.
type Origin string

const (
	// OriginFile: the clusters file (APMTEL_CLUSTERS_FILE).
	OriginFile Origin = "file"
	// OriginSource: the single cluster of the APMTEL_SOURCE_* settings.
	OriginSource Origin = "source"
)

// IndexOverrides replace some of the APMTEL_INDICES_* patterns for one
// cluster; an empty field keeps the deployment's pattern.
type IndexOverrides struct {
	Transaction        string `yaml:"transaction" json:"transaction,omitempty"`
	Span               string `yaml:"span" json:"span,omitempty"`
	Error              string `yaml:"error" json:"error,omitempty"`
	Metric             string `yaml:"metric" json:"metric,omitempty"`
	Onboarding         string `yaml:"onboarding" json:"onboarding,omitempty"`
	AgentConfiguration string `yaml:"agent_configuration" json:"agent_configuration,omitempty"`
	Kibana             string `yaml:"kibana" json:"kibana,omitempty"`
}

// Apply returns def with the overrides set in o.
func (o IndexOverrides) Apply(def config.Indices) config.Indices {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&def.Transaction, o.Transaction)
	set(&def.Span, o.Span)
	set(&def.Error, o.Error)
	set(&def.Metric, o.Metric)
	set(&def.Onboarding, o.Onboarding)
	set(&def.AgentConfiguration, o.AgentConfiguration)
	set(&def.Kibana, o.Kibana)
	return def
}

// Cluster is one source cluster of a Set. Values handed out by a Set are
// copies: changing one changes no Set.
type Cluster struct {
	// Name is the source name (rules of APMTEL_SOURCE_NAME): the Redis hash
	// tag, the job ids, the spread offset and the CLI's --cluster.
	Name string
	// URLs are the cluster's HTTP endpoints.
	URLs []string
	// Username goes with PasswordFile (basic authentication).
	Username string
	// APIKeyFile and PasswordFile hold the credentials; read with Credentials.
	APIKeyFile   SecretFile
	PasswordFile SecretFile
	// CACert is the PEM file of the CA that signed the cluster's certificate.
	CACert string
	// Insecure turns off certificate verification.
	Insecure bool
	// SearchConcurrency is this cluster's cap; 0 means APMTEL_SEARCH_CONCURRENCY.
	SearchConcurrency int
	// Indices override some of the APMTEL_INDICES_* patterns.
	Indices IndexOverrides
	// KibanaVersion overrides APMTEL_KIBANA_VERSION ("" keeps it).
	KibanaVersion string
	// Enabled is false when the file says so or the entry cannot work;
	// DisabledReason then says why.
	Enabled        bool
	DisabledReason string
	// Line is the entry's line in the clusters file (0 for OriginSource).
	Line int

	// revision hashes the entry and the state of the files it names.
	revision string

	// static holds the APMTEL_SOURCE_* credentials of a single-cluster Set,
	// already read from the environment or their *_FILE.
	static *Credentials
}

// Credentials are what a client authenticates with. Never log them.
type Credentials struct {
	APIKey   string
	Username string
	Password string
}

// String keeps the secrets out of any log line that prints Credentials.
func (c Credentials) String() string {
	switch {
	case c.APIKey != "":
		return "api key [redacted]"
	case c.Username != "":
		return "user " + c.Username + " password [redacted]"
	}
	return "none"
}

// GoString keeps %#v from printing the secrets.
func (c Credentials) GoString() string { return "fleet.Credentials(" + c.String() + ")" }

// Credentials reads the cluster's credentials now: a rotated secret file is
// seen on the next call. Call it for each new connection or request batch,
// not once per process.
func (c Cluster) Credentials() (Credentials, error) {
	if c.static != nil {
		return *c.static, nil
	}
	if c.APIKeyFile.IsSet() {
		k, err := c.APIKeyFile.Read()
		if err != nil {
			return Credentials{}, fmt.Errorf("cluster %s: api_key_file: %w", c.Name, err)
		}
		return Credentials{APIKey: k}, nil
	}
	if c.Username != "" {
		p, err := c.PasswordFile.Read()
		if err != nil {
			return Credentials{}, fmt.Errorf("cluster %s: password_file: %w", c.Name, err)
		}
		return Credentials{Username: c.Username, Password: p}, nil
	}
	return Credentials{}, nil
}

// Cap returns the cluster's search cap, def (APMTEL_SEARCH_CONCURRENCY) unless set.
func (c Cluster) Cap(def int) int {
	if c.SearchConcurrency > 0 {
		return c.SearchConcurrency
	}
	return def
}

// IndicesFrom returns the deployment's patterns def with the cluster's overrides.
func (c Cluster) IndicesFrom(def config.Indices) config.Indices { return c.Indices.Apply(def) }

// Version returns the cluster's Kibana version, def (APMTEL_KIBANA_VERSION) unless set.
func (c Cluster) Version(def string) string {
	if c.KibanaVersion != "" {
		return c.KibanaVersion
	}
	return def
}

// Revision identifies the cluster's configuration: its entry and the state
// (size, modification time) of its CA and secret files. A changed revision
// means its client must be rebuilt; equal revisions, the same client.
func (c Cluster) Revision() string { return c.revision }

// Space is the cluster's Redis key space under prefix.
func (c Cluster) Space(prefix string) keys.Space { return keys.NewFor(prefix, c.Name) }

func (c Cluster) clone() Cluster {
	c.URLs = slices.Clone(c.URLs)
	if c.static != nil {
		s := *c.static
		c.static = &s
	}
	return c
}

// Set is an immutable snapshot of the configured clusters, sorted by name.
// The zero Set has no clusters.
type Set struct {
	origin   Origin
	path     string
	version  string
	loadedAt time.Time
	clusters []Cluster
}

// Origin says where the Set came from.
func (s Set) Origin() Origin { return s.origin }

// Path is the clusters file ("" for OriginSource).
func (s Set) Path() string { return s.path }

// Version identifies the Set's content (a hash of the file and of the state
// of the files it names): equal versions, equal Sets.
func (s Set) Version() string { return s.version }

// LoadedAt is when the Set was built.
func (s Set) LoadedAt() time.Time { return s.loadedAt }

// Len is the number of clusters, enabled or not.
func (s Set) Len() int { return len(s.clusters) }

// Clusters returns a copy of every cluster, sorted by name.
func (s Set) Clusters() []Cluster {
	out := make([]Cluster, len(s.clusters))
	for i, c := range s.clusters {
		out[i] = c.clone()
	}
	return out
}

// Enabled returns a copy of the enabled clusters, sorted by name.
func (s Set) Enabled() []Cluster {
	var out []Cluster
	for _, c := range s.clusters {
		if c.Enabled {
			out = append(out, c.clone())
		}
	}
	return out
}

// Names lists every cluster's name, sorted.
func (s Set) Names() []string {
	out := make([]string, len(s.clusters))
	for i, c := range s.clusters {
		out[i] = c.Name
	}
	return out
}

// Get returns a copy of the named cluster.
func (s Set) Get(name string) (Cluster, bool) {
	i, ok := slices.BinarySearchFunc(s.clusters, name, func(c Cluster, n string) int {
		switch {
		case c.Name < n:
			return -1
		case c.Name > n:
			return 1
		}
		return 0
	})
	if !ok {
		return Cluster{}, false
	}
	return s.clusters[i].clone(), true
}

// FromSource is the Set of a deployment without a clusters file: the one
// cluster of the APMTEL_SOURCE_* settings, named name (APMTEL_SOURCE_NAME).
// Its credentials are src's, already read; keys, job ids and payloads stay
// those of a single-cluster deployment. An unreachable configuration (no
// URL, a missing CA file) disables the cluster with the reason, as in a file.
func FromSource(name string, src config.Cluster) (Set, error) {
	if err := keys.ValidSource(name); err != nil {
		return Set{}, fmt.Errorf("APMTEL_SOURCE_NAME: %w", err)
	}
	creds := Credentials{APIKey: src.APIKey}
	if src.APIKey == "" {
		creds.Username, creds.Password = src.Username, src.Password
	}
	c := Cluster{
		Name:     name,
		URLs:     slices.Clone(src.URLs),
		Username: src.Username,
		CACert:   src.CACert,
		Insecure: src.Insecure,
		Enabled:  true,
		static:   &creds,
	}
	if reason := usable(c); reason != "" {
		c.Enabled, c.DisabledReason = false, reason
	}
	c.revision = c.computeRevision()
	return Set{
		origin:   OriginSource,
		version:  fingerprint([]byte(name+"\x00"+fmt.Sprint(src.URLs)), c.filesToWatch()),
		loadedAt: time.Now(),
		clusters: []Cluster{c},
	}, nil
}

// Exclusive refuses a clusters file together with APMTEL_SOURCE_*
// settings: the file names every cluster, the settings one, and which one
// was meant cannot be guessed. sourceVars are the APMTEL_SOURCE_* variables
// (or flags) that were set explicitly.
func Exclusive(clustersFile string, sourceVars []string) error {
	if clustersFile == "" || len(sourceVars) == 0 {
		return nil
	}
	return fmt.Errorf("APMTEL_CLUSTERS_FILE and %s: set either the clusters file or the APMTEL_SOURCE_* settings, not both", sourceVars[0])
}

// Diff lists what changed from old to new: clusters added, removed, and
// changed (a different Revision: entry, CA or secret files), each sorted.
// A removed cluster's client is closed and its queued jobs end quietly; a
// changed one gets a new client for its next run.
func Diff(old, new Set) (added, removed, changed []string) {
	i, j := 0, 0
	for i < len(old.clusters) || j < len(new.clusters) {
		switch {
		case j == len(new.clusters) || i < len(old.clusters) && old.clusters[i].Name < new.clusters[j].Name:
			removed = append(removed, old.clusters[i].Name)
			i++
		case i == len(old.clusters) || new.clusters[j].Name < old.clusters[i].Name:
			added = append(added, new.clusters[j].Name)
			j++
		default:
			if old.clusters[i].revision != new.clusters[j].revision {
				changed = append(changed, new.clusters[j].Name)
			}
			i++
			j++
		}
	}
	return added, removed, changed
}
