package config

import (
	"errors"
	"flag"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func lookupFrom(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoadPrecedence(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c, err := Load(fs, []string{"-interval", "1h"}, lookupFrom(map[string]string{
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
		{"short interval", map[string]string{"APMTEL_INTERVAL": "1s"}, "APMTEL_INTERVAL: 1s is shorter"},
		{"empty pattern", map[string]string{"APMTEL_INDICES_SPAN": ""}, "APMTEL_INDICES_SPAN: index pattern is empty"},
		{"bad pattern", map[string]string{"APMTEL_INDICES_ERROR": "logs apm"}, `APMTEL_INDICES_ERROR: invalid index pattern "logs apm"`},
		{"user without password", map[string]string{"APMTEL_TELEMETRY_USERNAME": "u"}, "APMTEL_TELEMETRY_PASSWORD: must be set"},
		{"index name", map[string]string{"APMTEL_TELEMETRY_INDEX": "Bad"}, "APMTEL_TELEMETRY_INDEX"},
		{"deadline", map[string]string{"APMTEL_RUN_DEADLINE": "1m"}, "APMTEL_RUN_DEADLINE: 1m0s is shorter than APMTEL_TASK_TIMEOUT"},
		{"endpoint url", map[string]string{"APMTEL_TELEMETRY_ENDPOINT": "telemetry", "APMTEL_TELEMETRY_JWKS": "k.json"}, `APMTEL_TELEMETRY_ENDPOINT: "telemetry" is not an http(s) URL`},
		{"endpoint without jwks", map[string]string{"APMTEL_TELEMETRY_ENDPOINT": "https://telemetry.example"}, "APMTEL_TELEMETRY_JWKS: required"},
		{"endpoint and url", map[string]string{"APMTEL_TELEMETRY_ENDPOINT": "https://t.example", "APMTEL_TELEMETRY_JWKS": "k.json", "APMTEL_TELEMETRY_URL": "http://es:9200"}, "not both"},
		{"kibana version", map[string]string{"APMTEL_KIBANA_VERSION": "nine"}, `APMTEL_KIBANA_VERSION: "nine" is not a version`},
		{"http addr", map[string]string{"APMTEL_HTTP_ADDR": "8081"}, `APMTEL_HTTP_ADDR: "8081" is not host:port`},
		{"cluster metrics limit", map[string]string{"APMTEL_METRICS_CLUSTER_LIMIT": "-1"}, "APMTEL_METRICS_CLUSTER_LIMIT: -1 is out of range 0-100000"},
		{"cluster metrics limit too high", map[string]string{"APMTEL_METRICS_CLUSTER_LIMIT": "100001"}, "APMTEL_METRICS_CLUSTER_LIMIT: 100001 is out of range 0-100000"},
		{"negative grace", map[string]string{"APMTEL_CATCHUP_GRACE": "-1m"}, "APMTEL_CATCHUP_GRACE: must not be negative, got -1m0s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			_, err := Load(fs, nil, lookupFrom(tc.env))
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

// The README documents every variable; a new option without documentation fails here.
func TestREADMEListsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range Options() {
		if !strings.Contains(string(b), o.Env) {
			t.Errorf("README.md does not document %s", o.Env)
		}
	}
}

func TestSecretsNeverFlagsAndFromFiles(t *testing.T) {
	dir := t.TempDir()
	pw := dir + "/pw"
	if err := os.WriteFile(pw, []byte("s3cret-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c, err := Load(fs, nil, lookupFrom(map[string]string{"APMTEL_SOURCE_PASSWORD_FILE": pw, "APMTEL_SOURCE_USERNAME": "u"}))
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
		{"flag", []string{"--source-password", "hunter2"}, nil, "secrets are not accepted as flags"},
		{"flag names the variable", []string{"--redis-password=hunter2"}, nil, "APMTEL_REDIS_PASSWORD_FILE"},
		{"both", nil, map[string]string{"APMTEL_MONITOR_TOKEN": "hunter2", "APMTEL_MONITOR_TOKEN_FILE": pw}, "both set"},
		{"missing file", nil, map[string]string{"APMTEL_TELEMETRY_API_KEY_FILE": dir + "/nope"}, "APMTEL_TELEMETRY_API_KEY_FILE: cannot read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			_, err := Load(fs, tc.args, lookupFrom(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error echoes the secret: %v", err)
			}
		})
	}
}

func TestURLErrorsRedactUserinfo(t *testing.T) {
	for _, u := range []string{"ftp://elastic:hunter2@es:9200", "http://elastic:hun ter2@es:9200", "http//elastic:hunter2@es"} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		_, err := Load(fs, nil, lookupFrom(map[string]string{"APMTEL_SOURCE_URL": u}))
		if err == nil || !strings.Contains(err.Error(), "APMTEL_SOURCE_URL") {
			t.Fatalf("%s: error %v", u, err)
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "hun ter2") {
			t.Errorf("%s: error echoes the password: %v", u, err)
		}
	}
}

func TestHistoryTTLMustOutliveRunAndUploadWindow(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	_, err := Load(fs, nil, lookupFrom(map[string]string{"APMTEL_HISTORY_TTL": "8s", "APMTEL_RUN_DEADLINE": "1m", "APMTEL_TASK_TIMEOUT": "30s"}))
	if err == nil || !strings.Contains(err.Error(), "APMTEL_HISTORY_TTL") || !strings.Contains(err.Error(), "APMTEL_RUN_DEADLINE") ||
		!strings.Contains(err.Error(), "APMTEL_UPLOAD_RETRY_WINDOW") {
		t.Fatalf("error %v", err)
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := Load(fs, nil, lookupFrom(map[string]string{"APMTEL_HISTORY_TTL": "2h", "APMTEL_RUN_DEADLINE": "1m",
		"APMTEL_TASK_TIMEOUT": "30s", "APMTEL_UPLOAD_RETRY_WINDOW": "1h"})); err != nil {
		t.Errorf("valid combination refused: %v", err)
	}
}

func TestIntersperse(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Bool("wait", false, "")
	fs.String("task", "", "")
	tests := []struct{ in, want string }{
		{"cloud --wait", "--wait -- cloud"},
		{"--task cloud host --wait", "--task cloud --wait -- host"},
		{"RUN --report=true", "--report=true -- RUN"},
		{"a -- --wait", "-- a --wait"},
		{"--wait", "--wait"},
	}
	for _, tc := range tests {
		if got := strings.Join(Intersperse(fs, strings.Fields(tc.in)), " "); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
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
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c, err := Load(fs, nil, lookupFrom(tc.env))
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
