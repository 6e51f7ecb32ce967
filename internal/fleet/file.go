package fleet

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/apmtel/apmtel/internal/boundedfile"
	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/keys"
)

// fileDoc is the clusters file as written; KnownFields refuses any other key.
type fileDoc struct {
	Clusters []fileEntry `yaml:"clusters"`
}

type fileEntry struct {
	Name              string         `yaml:"name"`
	URLs              []string       `yaml:"urls"`
	APIKeyFile        string         `yaml:"api_key_file"`
	Username          string         `yaml:"username"`
	PasswordFile      string         `yaml:"password_file"`
	CACert            string         `yaml:"ca_cert"`
	Insecure          bool           `yaml:"insecure"`
	SearchConcurrency *wholeNumber   `yaml:"search_concurrency"`
	Indices           IndexOverrides `yaml:"indices"`
	KibanaVersion     string         `yaml:"kibana_version"`
	Enabled           *bool          `yaml:"enabled"`
}

// wholeNumber refuses what the YAML library would truncate into an int
// (search_concurrency: 1.5 would silently be 1).
type wholeNumber int

func (w *wholeNumber) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a whole number, got %q", n.Line, n.Value)}}
	}
	var i int
	if err := n.Decode(&i); err != nil {
		return err
	}
	*w = wholeNumber(i)
	return nil
}

// Load reads and parses the clusters file at path (see Parse).
func Load(path string) (Set, error) {
	b, err := boundedfile.Read(path)
	if err != nil {
		return Set{}, fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	return Parse(path, b)
}

// Parse builds the Set of the clusters file data read from path. A file
// that is not well formed is refused whole: the error is one line,
// "<path>:<line>: <problem>" (the line when known), naming the first problem
// and how many more there are. A well-formed entry that cannot work is kept
// disabled, with the reason in DisabledReason.
func Parse(path string, data []byte) (Set, error) {
	var doc fileDoc
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return Set{}, fmt.Errorf("%s: empty file: want a \"clusters:\" list", path)
		}
		return Set{}, yamlError(path, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Set{}, fmt.Errorf("%s:%d: a second YAML document: the clusters file holds one", path, extra.Line)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Set{}, yamlError(path, err)
	}
	lines := entryLines(&root)
	if len(doc.Clusters) == 0 {
		return Set{}, fmt.Errorf("%s: no clusters: want a non-empty \"clusters:\" list (disable a cluster with enabled: false)", path)
	}

	var problems []string
	seen := map[string]int{}
	clusters := make([]Cluster, 0, len(doc.Clusters))
	for i, e := range doc.Clusters {
		line := 0
		if i < len(lines) {
			line = lines[i]
		}
		at := path + ":" + strconv.Itoa(line)
		switch {
		case e.Name == "":
			problems = append(problems, fmt.Sprintf("%s: cluster entry without a name", at))
			continue
		case keys.ValidSource(e.Name) != nil:
			problems = append(problems, fmt.Sprintf("%s: name: %v", at, keys.ValidSource(e.Name)))
			continue
		}
		if prev, dup := seen[e.Name]; dup {
			problems = append(problems, fmt.Sprintf("%s: cluster %q is already defined at line %d", at, e.Name, prev))
			continue
		}
		seen[e.Name] = line
		clusters = append(clusters, entryCluster(e, line))
	}
	if len(problems) > 0 {
		msg := problems[0]
		if len(problems) > 1 {
			msg += fmt.Sprintf(" (and %d more)", len(problems)-1)
		}
		return Set{}, errors.New(msg)
	}
	slices.SortFunc(clusters, func(a, b Cluster) int { return strings.Compare(a.Name, b.Name) })
	var files []string
	for _, c := range clusters {
		files = append(files, c.filesToWatch()...)
	}
	return Set{
		origin:   OriginFile,
		path:     path,
		version:  fingerprint(data, files),
		loadedAt: time.Now(),
		clusters: clusters,
	}, nil
}

func entryCluster(e fileEntry, line int) Cluster {
	c := Cluster{
		Name:          e.Name,
		URLs:          e.URLs,
		Username:      e.Username,
		APIKeyFile:    NewSecretFile(e.APIKeyFile),
		PasswordFile:  NewSecretFile(e.PasswordFile),
		CACert:        e.CACert,
		Insecure:      e.Insecure,
		Indices:       e.Indices,
		KibanaVersion: e.KibanaVersion,
		Enabled:       e.Enabled == nil || *e.Enabled,
		Line:          line,
	}
	var reasons []string
	if e.SearchConcurrency != nil {
		if *e.SearchConcurrency < 1 {
			reasons = append(reasons, fmt.Sprintf("search_concurrency: %d is not a positive cap", *e.SearchConcurrency))
		} else {
			c.SearchConcurrency = int(*e.SearchConcurrency)
		}
	}
	switch {
	case e.APIKeyFile != "" && (e.Username != "" || e.PasswordFile != ""):
		reasons = append(reasons, "api_key_file and username/password_file: choose one")
	case e.Username != "" && e.PasswordFile == "":
		reasons = append(reasons, "username needs password_file")
	case e.PasswordFile != "" && e.Username == "":
		reasons = append(reasons, "password_file needs username")
	}
	if err := e.Indices.Apply(config.DefaultIndices()).Validate(); err != nil {
		reasons = append(reasons, "indices: "+strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	if e.KibanaVersion != "" && !versionPattern.MatchString(e.KibanaVersion) {
		reasons = append(reasons, fmt.Sprintf("kibana_version: %q is not a version like 9.2.0", e.KibanaVersion))
	}
	if len(reasons) == 0 {
		if r := usable(c); r != "" {
			reasons = append(reasons, r)
		}
	}
	switch {
	case len(reasons) > 0:
		c.Enabled, c.DisabledReason = false, strings.Join(reasons, "; ")
	case !c.Enabled:
		c.DisabledReason = "enabled: false in the clusters file"
	}
	c.revision = c.computeRevision()
	return c
}

// computeRevision hashes everything that makes the cluster's client: the
// entry's fields (secret paths, not contents) and its files' state.
func (c Cluster) computeRevision() string {
	entry := fmt.Sprintf("%q|%q|%q|%q|%q|%q|%v|%d|%+v|%q|%v|%q", c.Name, c.URLs, c.Username,
		c.APIKeyFile.Path(), c.PasswordFile.Path(), c.CACert, c.Insecure, c.SearchConcurrency,
		c.Indices, c.KibanaVersion, c.Enabled, c.DisabledReason)
	if c.static != nil {
		// The credentials of APMTEL_SOURCE_* are values: hash them, never show them.
		entry += "|" + c.static.APIKey + "|" + c.static.Username + "|" + c.static.Password
	}
	return fingerprint([]byte(entry), c.filesToWatch())
}

var versionPattern = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`)

// usable returns why c cannot work where it runs ("" when it can): its
// URLs, CA file and secret files are checked now, as a client would use them.
func usable(c Cluster) string {
	if len(c.URLs) == 0 {
		return "no urls"
	}
	for _, u := range c.URLs {
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return fmt.Sprintf("urls: %q is not an http(s) URL", config.RedactURL(u))
		}
		if pu.User != nil {
			return fmt.Sprintf("urls: %q carries credentials: use api_key_file or username and password_file", config.RedactURL(u))
		}
	}
	if c.CACert != "" {
		b, err := boundedfile.Read(c.CACert)
		if err != nil {
			return fmt.Sprintf("ca_cert %s: %v", c.CACert, unwrapPath(err))
		}
		if !x509.NewCertPool().AppendCertsFromPEM(b) {
			return fmt.Sprintf("ca_cert %s: no PEM certificate in the file", c.CACert)
		}
	}
	if c.static == nil {
		if _, err := c.Credentials(); err != nil {
			return strings.TrimPrefix(err.Error(), "cluster "+c.Name+": ")
		}
	}
	return ""
}

// filesToWatch are the files whose change may change what the cluster can do.
func (c Cluster) filesToWatch() []string {
	var out []string
	for _, p := range []string{c.CACert, c.APIKeyFile.Path(), c.PasswordFile.Path()} {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// fingerprint hashes the file's content and the state (size, modification
// time, absence) of the files it names: a CA file that appears or a secret
// that is rotated yields a new version, so a disabled cluster comes back
// without an edit of the clusters file.
func fingerprint(data []byte, files []string) string {
	h := sha256.New()
	h.Write(data)
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			fmt.Fprintf(h, "\x00%s\x00absent", f)
			continue
		}
		fmt.Fprintf(h, "\x00%s\x00%d\x00%d", f, st.Size(), st.ModTime().UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// entryLines returns the line of each item of the top-level clusters list.
func entryLines(root *yaml.Node) []int {
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil
	}
	m := root.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "clusters" && m.Content[i+1].Kind == yaml.SequenceNode {
			var out []int
			for _, item := range m.Content[i+1].Content {
				out = append(out, item.Line)
			}
			return out
		}
	}
	return nil
}

var (
	yamlLine     = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	yamlNotFound = regexp.MustCompile(`field (\S+) not found in type \S+`)
	yamlType     = regexp.MustCompile(` into (\S+)$`)
)

// yamlTypes names the file's Go types as the file's author knows them.
var yamlTypes = map[string]string{
	"[]fleet.fileEntry":    "a list of clusters",
	"fleet.fileEntry":      "a cluster entry (name:, urls:, …)",
	"fleet.fileDoc":        `a mapping with "clusters:"`,
	"fleet.IndexOverrides": "a mapping of index patterns",
	"[]string":             "a list of strings",
	"bool":                 "true or false",
}

// yamlError turns the YAML library's error into one line "<path>:<line>:
// <problem>", the first problem, with how many more there are.
func yamlError(path string, err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	first := strings.TrimPrefix(strings.TrimSpace(msgs[0]), "yaml: ")
	first = strings.ReplaceAll(first, "\n", " ")
	first = yamlNotFound.ReplaceAllString(first, `unknown key "$1"`)
	if m := yamlType.FindStringSubmatch(first); m != nil {
		want, ok := yamlTypes[m[1]]
		if !ok {
			want = strings.TrimPrefix(m[1], "*")
		}
		first = strings.TrimSuffix(first, m[0]) + " into " + want
	}
	out := path + ": " + first
	if m := yamlLine.FindStringSubmatch(first); m != nil {
		out = path + ":" + m[1] + ": " + m[2]
	}
	if len(msgs) > 1 {
		out += fmt.Sprintf(" (and %d more)", len(msgs)-1)
	}
	return errors.New(out)
}
