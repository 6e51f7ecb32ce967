package config

import (
	"strings"
	"testing"
	"time"
)

func TestFleetSettings(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		spread  time.Duration
		wantErr string
	}{
		{"defaults: a quarter of the interval", map[string]string{}, 3 * time.Hour, ""},
		{"quarter of a short interval", map[string]string{"APMTEL_INTERVAL": "1h"}, 15 * time.Minute, ""},
		{"zero is all at once", map[string]string{"APMTEL_FLEET_SPREAD": "0s"}, 0, ""},
		{"explicit", map[string]string{"APMTEL_FLEET_SPREAD": "90m"}, 90 * time.Minute, ""},
		{"negative", map[string]string{"APMTEL_FLEET_SPREAD": "-1m"}, 0, "APMTEL_FLEET_SPREAD: -1m is out of range 0s-8784h"},
		{"as long as the interval", map[string]string{"APMTEL_FLEET_SPREAD": "12h"}, 0, "APMTEL_FLEET_SPREAD: 12h must be shorter than APMTEL_INTERVAL 12h"},
		{"not a duration", map[string]string{"APMTEL_FLEET_SPREAD": "soon"}, 0, `APMTEL_FLEET_SPREAD: "soon" is not a duration`},
		{"negative cap", map[string]string{"APMTEL_FLEET_CONCURRENCY": "-1"}, 0, "APMTEL_FLEET_CONCURRENCY: -1 is out of range 0-100000"},
		{"backoff zero", map[string]string{"APMTEL_FLEET_BACKOFF_AFTER": "0"}, 0, "APMTEL_FLEET_BACKOFF_AFTER: 0 is out of range 1-100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(nil, func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Spread(c.Interval); got != tt.spread {
				t.Fatalf("spread = %s, want %s", got, tt.spread)
			}
		})
	}
	d := Default()
	if d.FleetBackoffAfter != 3 || d.FleetConcurrency != 0 || d.ClustersFile != "" || d.FleetSpreadSet {
		t.Fatalf("defaults = %+v", d.Fleet)
	}
}

func TestSourceVarsSet(t *testing.T) {
	env := map[string]string{"APMTEL_SOURCE_URL": "http://127.0.0.1:9200", "APMTEL_SOURCE_INSECURE": "false", "APMTEL_SOURCE_USERNAME": "", "APMTEL_SOURCE_NAME": "x"}
	c, err := Load(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.SourceVarsSet, ","); got != "APMTEL_SOURCE_URL" {
		t.Fatalf("SourceVarsSet = %q, want APMTEL_SOURCE_URL only", got)
	}
}
