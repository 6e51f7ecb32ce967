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
		{"http addr", map[string]string{"APMTEL_HTTP_ADDR": "8081"}, `APMTEL_HTTP_ADDR: "8081" is not host:port`},
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
