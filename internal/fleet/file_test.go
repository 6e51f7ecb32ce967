package fleet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apmtel/apmtel/internal/config"
)

// fixture writes a CA file and two secret files into a fresh directory and
// returns it; the clusters files of the tests name them as $D.
func fixture(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	ca := realPEM(t)
	for name, content := range map[string]string{
		"ca.pem":   ca,
		"api-key":  "c2VjcmV0LWlkOnNlY3JldC1rZXk=\n",
		"password": "hunter2-secret\n",
	} {
		if err := os.WriteFile(filepath.Join(d, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// realPEM returns a certificate Go's parser accepts.
func realPEM(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseRefusesMalformedFileWhole(t *testing.T) {
	t.Parallel()
	d := fixture(t)
	for _, tc := range []struct {
		name, file, want string
	}{
		{"syntax", "clusters:\n  - name: a\n    urls: [\"http://x:9200\"\n", "c.yaml:2: did not find expected ',' or ']'"},
		{"unknown key", "clusters:\n  - name: a\n    urls: [\"http://x:9200\"]\n    pasword_file: /x\n", `c.yaml:4: unknown key "pasword_file"`},
		{"unknown top-level key", "cluster:\n  - name: a\n", `c.yaml:1: unknown key "cluster"`},
		{"unknown index key", "clusters:\n  - name: a\n    indices: {transactions: x}\n", `c.yaml:3: unknown key "transactions"`},
		{"wrong type", "clusters:\n  - name: a\n    search_concurrency: four\n", `c.yaml:3: want a whole number, got "four"`},
		{"fraction", "clusters:\n  - name: a\n    search_concurrency: 1.5\n", `c.yaml:3: want a whole number, got "1.5"`},
		{"map for list", "clusters: {a: 1}\n", "c.yaml:1: cannot unmarshal !!map into a list of clusters"},
		{"string for urls", "clusters:\n  - name: a\n    urls: x\n", "c.yaml:3: cannot unmarshal !!str `x` into a list of strings"},
		{"string for entry", "clusters:\n  - a\n", "c.yaml:2: cannot unmarshal !!str `a` into a cluster entry"},
		{"list for indices", "clusters:\n  - name: a\n    indices: [a]\n", "c.yaml:3: cannot unmarshal !!seq into a mapping of index patterns"},
		{"list for file", "[1]\n", "c.yaml:1: cannot unmarshal !!seq into a mapping with \"clusters:\""},
		{"not a bool", "clusters:\n  - name: a\n    enabled: maybe\n", "c.yaml:3: cannot unmarshal !!str `maybe` into true or false"},
		{"two problems", "clusters:\n  - name: a\n    foo: 1\n    bar: 2\n", `c.yaml:3: unknown key "foo" (and 1 more)`},
		{"empty", "", "c.yaml: empty file"},
		{"no clusters", "clusters: []\n", "c.yaml: no clusters"},
		{"missing name", "clusters:\n  - urls: [\"http://x:9200\"]\n", "c.yaml:2: cluster entry without a name"},
		{"bad name", "clusters:\n  - name: Prod_EU\n", `c.yaml:2: name: invalid source name "Prod_EU"`},
		{"name with brace", "clusters:\n  - name: \"a}b\"\n", `c.yaml:2: name: invalid source name "a}b"`},
		{"duplicate", "clusters:\n  - name: a\n    urls: [\"http://x:9200\"]\n  - name: a\n", `c.yaml:4: cluster "a" is already defined at line 2`},
		{"second document", "clusters:\n  - name: a\n---\nclusters: []\n", "c.yaml:3: a second YAML document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse("c.yaml", []byte(strings.ReplaceAll(tc.file, "$D", d)))
			if err == nil {
				t.Fatalf("accepted: %v", s.Names())
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %q\nwant prefix %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans lines: %q", err)
			}
			if s.Len() != 0 {
				t.Fatalf("refused file gave %d clusters", s.Len())
			}
		})
	}
}

func TestParseDisablesOnlyTheEntryThatCannotWork(t *testing.T) {
	t.Parallel()
	d := fixture(t)
	good := "  - name: good\n    urls: [\"https://es:9200\"]\n    api_key_file: $D/api-key\n    ca_cert: $D/ca.pem\n"
	for _, tc := range []struct {
		name, entry, reason string
	}{
		{"ca missing", "  - name: x\n    urls: [\"https://es:9200\"]\n    ca_cert: $D/nope.pem\n", "ca_cert $D/nope.pem: no such file or directory"},
		{"ca not pem", "  - name: x\n    urls: [\"https://es:9200\"]\n    ca_cert: $D/api-key\n", "ca_cert $D/api-key: no PEM certificate in the file"},
		{"bad url", "  - name: x\n    urls: [\"es:9200\"]\n", `urls: "es:9200" is not an http(s) URL`},
		{"url with password", "  - name: x\n    urls: [\"https://u:hunter2@es:9200\"]\n", `urls: "https://[redacted]@es:9200" carries credentials`},
		{"no urls", "  - name: x\n", "no urls"},
		{"secret missing", "  - name: x\n    urls: [\"https://es:9200\"]\n    api_key_file: $D/gone\n", "api_key_file: secret file $D/gone: no such file or directory"},
		{"both auths", "  - name: x\n    urls: [\"https://es:9200\"]\n    api_key_file: $D/api-key\n    username: u\n    password_file: $D/password\n", "api_key_file and username/password_file: choose one"},
		{"user without password", "  - name: x\n    urls: [\"https://es:9200\"]\n    username: u\n", "username needs password_file"},
		{"zero cap", "  - name: x\n    urls: [\"https://es:9200\"]\n    search_concurrency: 0\n", "search_concurrency: 0 is not a positive cap"},
		{"bad index", "  - name: x\n    urls: [\"https://es:9200\"]\n    indices: {span: \"a b\"}\n", `indices: APMTEL_INDICES_SPAN: invalid index pattern "a b"`},
		{"bad version", "  - name: x\n    urls: [\"https://es:9200\"]\n    kibana_version: \"8.x\"\n", `kibana_version: "8.x" is not a version`},
		{"disabled", "  - name: x\n    urls: [\"https://es:9200\"]\n    enabled: false\n", "enabled: false in the clusters file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := strings.ReplaceAll("clusters:\n"+good+tc.entry, "$D", d)
			s, err := Parse("c.yaml", []byte(file))
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Names(); len(got) != 2 || got[0] != "good" || got[1] != "x" {
				t.Fatalf("names %v", got)
			}
			g, _ := s.Get("good")
			if !g.Enabled || g.DisabledReason != "" {
				t.Fatalf("good cluster disabled: %q", g.DisabledReason)
			}
			x, _ := s.Get("x")
			want := strings.ReplaceAll(tc.reason, "$D", d)
			if x.Enabled || !strings.HasPrefix(x.DisabledReason, want) {
				t.Fatalf("x enabled=%v reason %q, want prefix %q", x.Enabled, x.DisabledReason, want)
			}
			if x.Line != 6 && x.Line != 7 {
				t.Fatalf("x at line %d", x.Line)
			}
			if strings.Contains(x.DisabledReason, "hunter2") {
				t.Fatalf("reason echoes a secret: %q", x.DisabledReason)
			}
			if en := s.Enabled(); len(en) != 1 || en[0].Name != "good" {
				t.Fatalf("enabled %v", en)
			}
		})
	}
}

func TestParseFullEntry(t *testing.T) {
	t.Parallel()
	d := fixture(t)
	file := strings.ReplaceAll(`clusters:
  - name: prod-eu                 # the source name
    urls: ["https://es-eu.example:9200", "https://es-eu2.example:9200"]
    api_key_file: $D/api-key
    ca_cert: $D/ca.pem
    insecure: false
    search_concurrency: 4
    indices: {transaction: "traces-apm*,apm-*"}
    kibana_version: "8.19.0"
    enabled: true
  - name: dev.us
    urls: ["http://127.0.0.1:9200"]
    username: apmtel
    password_file: $D/password
`, "$D", d)
	s, err := Parse("c.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if s.Origin() != OriginFile || s.Path() != "c.yaml" || s.Version() == "" {
		t.Fatalf("origin %q path %q version %q", s.Origin(), s.Path(), s.Version())
	}
	if got := s.Names(); len(got) != 2 || got[0] != "dev.us" || got[1] != "prod-eu" {
		t.Fatalf("names %v (want sorted)", got)
	}
	p, ok := s.Get("prod-eu")
	if !ok || !p.Enabled || len(p.URLs) != 2 || p.Cap(9) != 4 || p.Version("9.0.0") != "8.19.0" || p.Line != 2 {
		t.Fatalf("prod-eu %+v", p)
	}
	ix := p.IndicesFrom(config.DefaultIndices())
	if ix.Transaction != "traces-apm*,apm-*" || ix.Span != config.DefaultIndices().Span {
		t.Fatalf("indices %+v", ix)
	}
	cr, err := p.Credentials()
	if err != nil || cr.APIKey != "c2VjcmV0LWlkOnNlY3JldC1rZXk=" || cr.Username != "" {
		t.Fatalf("credentials %v %v", cr.APIKey, err)
	}
	dv, _ := s.Get("dev.us")
	cr, err = dv.Credentials()
	if err != nil || cr.Username != "apmtel" || cr.Password != "hunter2-secret" {
		t.Fatalf("credentials %v %v", cr, err)
	}
	if dv.Cap(9) != 9 || dv.Version("9.0.0") != "9.0.0" {
		t.Fatalf("defaults not applied: cap %d version %s", dv.Cap(9), dv.Version("9.0.0"))
	}
	// Copies: changing what a Set handed out changes no Set.
	p.URLs[0] = "http://changed:1"
	again, _ := s.Get("prod-eu")
	if again.URLs[0] != "https://es-eu.example:9200" {
		t.Fatalf("Set changed through a copy: %v", again.URLs)
	}
	if _, ok := s.Get("absent"); ok {
		t.Fatal("absent cluster found")
	}
}

func TestFromSource(t *testing.T) {
	t.Parallel()
	d := fixture(t)
	for _, tc := range []struct {
		name    string
		src     config.Cluster
		err     string
		enabled bool
		reason  string
		creds   Credentials
	}{
		{name: "default", src: config.Cluster{URLs: []string{"http://127.0.0.1:9200"}, APIKey: "k"}, enabled: true, creds: Credentials{APIKey: "k"}},
		{name: "prod", src: config.Cluster{URLs: []string{"https://es:9200"}, Username: "u", Password: "p", CACert: d + "/ca.pem"}, enabled: true, creds: Credentials{Username: "u", Password: "p"}},
		{name: "x", src: config.Cluster{URLs: []string{"https://es:9200"}, CACert: d + "/missing.pem"}, reason: "ca_cert " + d + "/missing.pem: no such file or directory"},
		{name: "x", src: config.Cluster{}, reason: "no urls"},
		{name: "Bad", src: config.Cluster{URLs: []string{"http://es:9200"}}, err: `APMTEL_SOURCE_NAME: invalid source name "Bad"`},
	} {
		s, err := FromSource(tc.name, tc.src)
		if tc.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
				t.Fatalf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if s.Origin() != OriginSource || s.Len() != 1 || s.Names()[0] != tc.name {
			t.Fatalf("set %v %v", s.Origin(), s.Names())
		}
		c, _ := s.Get(tc.name)
		if c.Enabled != tc.enabled || c.DisabledReason != tc.reason {
			t.Fatalf("%s: enabled %v reason %q, want %v %q", tc.name, c.Enabled, c.DisabledReason, tc.enabled, tc.reason)
		}
		if cr, _ := c.Credentials(); cr != tc.creds {
			t.Fatalf("%s: credentials differ", tc.name)
		}
		if c.Space("apmtel").Run("r1") != "apmtel:{"+tc.name+"}:run:r1" {
			t.Fatalf("key space %v", c.Space("apmtel"))
		}
	}
}

func TestExclusive(t *testing.T) {
	t.Parallel()
	if err := Exclusive("", []string{"APMTEL_SOURCE_URL"}); err != nil {
		t.Fatal(err)
	}
	if err := Exclusive("/etc/apmtel/clusters.yaml", nil); err != nil {
		t.Fatal(err)
	}
	err := Exclusive("/etc/apmtel/clusters.yaml", []string{"APMTEL_SOURCE_URL", "APMTEL_SOURCE_NAME"})
	if err == nil || !strings.Contains(err.Error(), "APMTEL_CLUSTERS_FILE and APMTEL_SOURCE_URL") {
		t.Fatalf("error %v", err)
	}
}
