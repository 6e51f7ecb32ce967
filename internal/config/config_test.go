package config

import (
	"github.com/spf13/pflag"

	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func lookupFrom(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// load parses args as a command reading every option would, then loads.
func load(args []string, env map[string]string) (Config, error) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return Config{}, &UsageError{err}
	}
	return Load(fs, lookupFrom(env))
}

func TestLoadPrecedence(t *testing.T) {
	c, err := load([]string{"--interval", "1h"}, (map[string]string{
		"APMTEL_INTERVAL":            "2h",
		"APMTEL_REDIS_ADDR":          "127.0.0.1:7000",
		"APMTEL_SOURCE_URL":          "http://a:9200, http://b:9200",
		"APMTEL_OPT_IN":              "false",
		"APMTEL_INDICES_TRANSACTION": "traces-x*",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Interval != time.Hour {
		t.Errorf("flag should win over env: interval = %s", c.Interval)
	}
	if c.RedisAddr != "127.0.0.1:7000" || !c.RedisAddrSet {
		t.Errorf("redis addr = %q set=%v", c.RedisAddr, c.RedisAddrSet)
	}
	if got := strings.Join(c.Source.URLs, "|"); got != "http://a:9200|http://b:9200" {
		t.Errorf("source urls = %q", got)
	}
	if c.OptIn {
		t.Error("opt-in should be false")
	}
	if c.Indices.Transaction != "traces-x*" || c.Indices.Span != DefaultIndices().Span {
		t.Errorf("indices = %+v", c.Indices)
	}
}

func TestLoadErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"bad duration", map[string]string{"APMTEL_INTERVAL": "soon"}, `APMTEL_INTERVAL: "soon" is not a duration`},
		{"bad bool", map[string]string{"APMTEL_OPT_IN": "maybe"}, `APMTEL_OPT_IN: "maybe" is not a boolean`},
		{"bad int", map[string]string{"APMTEL_REDIS_DB": "x"}, `APMTEL_REDIS_DB: "x" is not an integer`},
		{"db range", map[string]string{"APMTEL_REDIS_DB": "-1"}, "APMTEL_REDIS_DB: -1 is negative"},
		{"url", map[string]string{"APMTEL_SOURCE_URL": "ftp://x"}, `APMTEL_SOURCE_URL: "ftp://x" is not an http(s) URL`},
		{"short interval", map[string]string{"APMTEL_INTERVAL": "1s"}, "APMTEL_INTERVAL: 1s is out of range 1m-8784h"},
		{"empty pattern", map[string]string{"APMTEL_INDICES_SPAN": ""}, "APMTEL_INDICES_SPAN: index pattern is empty"},
		{"bad pattern", map[string]string{"APMTEL_INDICES_ERROR": "logs apm"}, `APMTEL_INDICES_ERROR: invalid index pattern "logs apm"`},
		{"user without password", map[string]string{"APMTEL_TELEMETRY_USERNAME": "u"}, "APMTEL_TELEMETRY_PASSWORD: must be set"},
		{"index name", map[string]string{"APMTEL_TELEMETRY_INDEX": "Bad"}, "APMTEL_TELEMETRY_INDEX"},
		{"deadline", map[string]string{"APMTEL_RUN_DEADLINE": "1m"}, "APMTEL_RUN_DEADLINE: 1m is shorter than APMTEL_TASK_TIMEOUT"},
		{"endpoint url", map[string]string{"APMTEL_TELEMETRY_ENDPOINT": "telemetry", "APMTEL_TELEMETRY_JWKS": "k.json"}, `APMTEL_TELEMETRY_ENDPOINT: "telemetry" is not an http(s) URL`},
		{"endpoint without jwks", map[string]string{"APMTEL_TELEMETRY_ENDPOINT": "https://telemetry.example"}, "APMTEL_TELEMETRY_JWKS: required"},
		{"endpoint and url", map[string]string{"APMTEL_TELEMETRY_ENDPOINT": "https://t.example", "APMTEL_TELEMETRY_JWKS": "k.json", "APMTEL_TELEMETRY_URL": "http://es:9200"}, "not both"},
		{"kibana version", map[string]string{"APMTEL_KIBANA_VERSION": "nine"}, `APMTEL_KIBANA_VERSION: "nine" is not a version`},
		{"http addr", map[string]string{"APMTEL_HTTP_ADDR": "8081"}, `APMTEL_HTTP_ADDR: "8081" is not host:port`},
		{"negative grace", map[string]string{"APMTEL_CATCHUP_GRACE": "-1m"}, "APMTEL_CATCHUP_GRACE: -1m is out of range 0s-8784h"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(nil, (tc.env))
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("want UsageError, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestSecrets(t *testing.T) {
	c := Default()
	c.Source.Password = "p1"
	c.Telemetry.APIKey = "k2"
	if got := strings.Join(c.Secrets(), ","); got != "k2,p1" {
		t.Errorf("secrets = %q", got)
	}
}

// docs/configuration.md documents every setting with its flag, default
// and kind, as Options() declares them; a new option, a changed default or
// a stale row fails here.
func TestConfigurationDocMatchesOptions(t *testing.T) {
	b, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(APMTEL_[A-Z_]+)` \\| ([^|]*) \\| ([^|]*) \\| ([^|]*) \\|")
	documented := map[string][]string{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		if _, dup := documented[m[1]]; dup {
			t.Errorf("%s is documented twice", m[1])
		}
		documented[m[1]] = m[2:]
	}
	for _, o := range Options() {
		d, ok := documented[o.Env]
		if !ok {
			t.Errorf("docs/configuration.md does not document %s", o.Env)
			continue
		}
		delete(documented, o.Env)
		flag, def := "`--"+o.Flag+"`", ""
		if o.Secret {
			flag = "(secret: environment or `" + o.Env + "_FILE`)"
		}
		if o.Default() != "" {
			def = "`" + o.Default() + "`"
		}
		if got := strings.TrimSpace(d[0]); got != flag {
			t.Errorf("%s: flag %q, want %q", o.Env, got, flag)
		}
		if got := strings.TrimSpace(d[1]); got != def {
			t.Errorf("%s: default %q, want %q (config.Default)", o.Env, got, def)
		}
		if got := strings.TrimSpace(d[2]); got != string(o.Kind()) {
			t.Errorf("%s: kind %q, want %q", o.Env, got, o.Kind())
		}
	}
	for env := range documented {
		t.Errorf("docs/configuration.md documents %s, which is no setting", env)
	}
}

// Every numeric and duration setting has both bounds; a value just
// outside is refused naming the variable, the bound itself is accepted,
// and no error echoes a secret.
func TestBounds(t *testing.T) {
	for _, tc := range []struct {
		env, ok, bad, want string
	}{
		{"APMTEL_SEARCH_CONCURRENCY", "1024", "9223372036854775807", "out of range 0-1024"},
		{"APMTEL_SEARCH_CONCURRENCY", "0", "-1", "out of range 0-1024"},
		{"APMTEL_SEARCH_MAX_ANSWER_MB", "1", "0", "out of range 1-1024"},
		{"APMTEL_SEARCH_MAX_ANSWER_MB", "1024", "1025", "out of range 1-1024"},
		{"APMTEL_SEARCH_TIMEOUT", "10ms", "1ns", "out of range 10ms-24h"},
		{"APMTEL_SEARCH_TIMEOUT", "24h", "25h", "out of range 10ms-24h"},
		{"APMTEL_POLL_INTERVAL", "1ms", "1ns", "out of range 1ms-1m"},
		{"APMTEL_POLL_INTERVAL", "1m", "2m", "out of range 1ms-1m"},
		{"APMTEL_HISTORY_LIMIT", "10000", "1000000000000", "out of range 1-10000"},
		{"APMTEL_HISTORY_LIMIT", "1", "0", "out of range 1-10000"},
		{"APMTEL_CONCURRENCY", "256", "257", "out of range 1-256"},
		{"APMTEL_METRICS_CLUSTER_LIMIT", "0", "-1", "out of range 0-100000"},
		{"APMTEL_METRICS_CLUSTER_LIMIT", "100000", "100001", "out of range 0-100000"},
		{"APMTEL_MAX_RETRY", "25", "26", "out of range 0-25"},
		{"APMTEL_REDIS_DB", "1023", "1024", "out of range 0-1023"},
		{"APMTEL_INTERVAL", "1m", "59s", "out of range 1m-8784h"},
		{"APMTEL_TASK_TIMEOUT", "10ms", "1ms", "out of range 10ms-24h"},
		{"APMTEL_ORPHAN_MIN_AGE", "1s", "999ms", "out of range 1s-24h"},
		{"APMTEL_UPLOAD_RETRY_WINDOW", "1s", "721h", "out of range 1s-720h"},
		{"APMTEL_RUN_DEADLINE", "5m", "169h", "out of range 10ms-168h"},
		{"APMTEL_CATCHUP_GRACE", "0s", "-1s", "out of range 0s-8784h"},
		{"APMTEL_HISTORY_TTL", "8784h", "8785h", "out of range 1s-8784h"},
		{"APMTEL_FLEET_SPREAD", "0s", "-1s", "out of range 0s-8784h"},
		{"APMTEL_FLEET_CONCURRENCY", "100000", "100001", "out of range 0-100000"},
		{"APMTEL_FLEET_BACKOFF_AFTER", "100", "101", "out of range 1-100"},
		{"APMTEL_SOURCE_URL", "http://h:1,http://h:2", "http://h:1,,,", "empty item in the comma-separated list"},
		{"APMTEL_SOURCE_URL", "http://h:1", "http://elastic:hunter2@h:1,", "empty item"},
		{"APMTEL_TELEMETRY_URL", "http://h:1", ",http://h:1", "empty item"},
		{"APMTEL_REDIS_ADDR", "a:1", "a:1,,", "empty item"},
	} {
		t.Run(tc.env+"="+tc.bad, func(t *testing.T) {
			if _, err := load(nil, map[string]string{tc.env: tc.ok}); err != nil {
				t.Errorf("%s=%s refused: %v", tc.env, tc.ok, err)
			}
			_, err := load(nil, map[string]string{tc.env: tc.bad})
			if err == nil || !strings.Contains(err.Error(), tc.env+": ") || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("%s=%s: error %v, want %q", tc.env, tc.bad, err, tc.want)
			}
		})
	}
	// Every numeric or duration option is in the table above.
	covered := "SEARCH_CONCURRENCY SEARCH_MAX_ANSWER_MB SEARCH_TIMEOUT POLL_INTERVAL HISTORY_LIMIT CONCURRENCY MAX_RETRY REDIS_DB INTERVAL TASK_TIMEOUT ORPHAN_MIN_AGE UPLOAD_RETRY_WINDOW CATCHUP_GRACE HISTORY_TTL RUN_DEADLINE METRICS_CLUSTER_LIMIT FLEET_SPREAD FLEET_CONCURRENCY FLEET_BACKOFF_AFTER"
	for _, o := range Options() {
		if (o.Kind() == KindInt || o.Kind() == KindDuration) && !slices.Contains(strings.Fields(covered), strings.TrimPrefix(o.Env, "APMTEL_")) {
			t.Errorf("%s has no bounds test", o.Env)
		}
	}
}

func TestSecretsNeverFlagsAndFromFiles(t *testing.T) {
	dir := t.TempDir()
	pw := dir + "/pw"
	if err := os.WriteFile(pw, []byte("s3cret-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := load(nil, (map[string]string{"APMTEL_SOURCE_PASSWORD_FILE": pw, "APMTEL_SOURCE_USERNAME": "u"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Source.Password != "s3cret-from-file" {
		t.Errorf("password from file = %q", c.Source.Password)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"both", nil, map[string]string{"APMTEL_MONITOR_TOKEN": "hunter2", "APMTEL_MONITOR_TOKEN_FILE": pw}, "both set"},
		{"missing file", nil, map[string]string{"APMTEL_TELEMETRY_API_KEY_FILE": dir + "/nope"}, "APMTEL_TELEMETRY_API_KEY_FILE: cannot read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(tc.args, (tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error echoes the secret: %v", err)
			}
		})
	}
}

// A secret has no flag; the name it would have gets an error that says
// where the secret goes.
func TestSecretFlagSaysWhereTheSecretGoes(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddFlags(fs)
	for _, o := range Options() {
		err := SecretFlag(o.Flag)
		switch {
		case o.Secret && (fs.Lookup(o.Flag) != nil || err == nil || !errors.Is(err, ErrSecretFlag) || !strings.Contains(err.Error(), o.Env+"_FILE")):
			t.Errorf("secret %s: flag %v, error %v", o.Env, fs.Lookup(o.Flag) != nil, err)
		case !o.Secret && (fs.Lookup(o.Flag) == nil || err != nil):
			t.Errorf("%s: flag %v, error %v", o.Env, fs.Lookup(o.Flag) != nil, err)
		}
	}
}

func TestURLErrorsRedactUserinfo(t *testing.T) {
	for _, u := range []string{"ftp://elastic:hunter2@es:9200", "http://elastic:hun ter2@es:9200", "http//elastic:hunter2@es"} {
		_, err := load(nil, (map[string]string{"APMTEL_SOURCE_URL": u}))
		if err == nil || !strings.Contains(err.Error(), "APMTEL_SOURCE_URL") {
			t.Fatalf("%s: error %v", u, err)
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "hun ter2") {
			t.Errorf("%s: error echoes the password: %v", u, err)
		}
	}
}

func TestHistoryTTLMustOutliveRunAndUploadWindow(t *testing.T) {
	_, err := load(nil, (map[string]string{"APMTEL_HISTORY_TTL": "8s", "APMTEL_RUN_DEADLINE": "1m", "APMTEL_TASK_TIMEOUT": "30s"}))
	if err == nil || !strings.Contains(err.Error(), "APMTEL_HISTORY_TTL") || !strings.Contains(err.Error(), "APMTEL_RUN_DEADLINE") ||
		!strings.Contains(err.Error(), "APMTEL_UPLOAD_RETRY_WINDOW") {
		t.Fatalf("error %v", err)
	}
	if _, err := load(nil, (map[string]string{"APMTEL_HISTORY_TTL": "2h", "APMTEL_RUN_DEADLINE": "1m",
		"APMTEL_TASK_TIMEOUT": "30s", "APMTEL_UPLOAD_RETRY_WINDOW": "1h"})); err != nil {
		t.Errorf("valid combination refused: %v", err)
	}
}

func TestRedisTopologies(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string // "" = valid
	}{
		{map[string]string{"APMTEL_REDIS_ADDR": "10.0.0.1:26379,10.0.0.2:26379", "APMTEL_REDIS_SENTINEL_MASTER": "mymaster"}, ""},
		{map[string]string{"APMTEL_REDIS_ADDR": "n1:7000, n2:7000,n3:7000", "APMTEL_REDIS_CLUSTER": "true"}, ""},
		{map[string]string{"APMTEL_REDIS_ADDR": "a:1,b:2"}, "2 addresses need APMTEL_REDIS_SENTINEL_MASTER"},
		{map[string]string{"APMTEL_REDIS_ADDR": "a:1", "APMTEL_REDIS_CLUSTER": "true", "APMTEL_REDIS_SENTINEL_MASTER": "m"}, "choose one"},
		{map[string]string{"APMTEL_REDIS_ADDR": "a:1", "APMTEL_REDIS_CLUSTER": "true", "APMTEL_REDIS_DB": "3"}, "only database 0"},
		{map[string]string{"APMTEL_REDIS_ADDR": "a:1,nope"}, `"nope" is not host:port`},
	} {
		c, err := load(nil, (tc.env))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.env, err)
		case tc.want == "" && len(c.RedisAddrs()) < 2:
			t.Errorf("%v: addrs %v", tc.env, c.RedisAddrs())
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v, want %q", tc.env, err, tc.want)
		}
	}
}
