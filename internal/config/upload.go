package config

import (
	"net/url"
	"strings"
)

// Upload is where a sealed run's document goes: a telemetry cluster, Elastic's
// telemetry service, or (neither set) a file under DataDir.
type Upload struct {
	// Telemetry is the cluster receiving the payload; unset means "write a file".
	Telemetry Cluster
	// TelemetryIndex is the index the payload is written to.
	TelemetryIndex string
	// TelemetryEndpoint is the base URL of an Elastic telemetry service
	// (Kibana's https://telemetry.elastic.co/); when set the payload is
	// POSTed to {endpoint}/v3/send/kibana-snapshot, encrypted as Kibana does.
	TelemetryEndpoint string
	// TelemetryJWKS is the path of a JSON file with the service's public
	// JWK set (RSA-OAEP keys); required with TelemetryEndpoint.
	TelemetryJWKS string
	// OptIn false collects but never uploads.
	OptIn bool
	// DataDir is where payloads are written when no telemetry cluster is configured.
	DataDir string
}

// DefaultUpload writes files under ./data, opted in.
func DefaultUpload() Upload {
	return Upload{TelemetryIndex: "xpack-phone-home", OptIn: true, DataDir: "data"}
}

// Validate checks the target's addresses and that exactly one kind is chosen.
func (u Upload) Validate() error {
	var p problems
	p.cluster("APMTEL_TELEMETRY", u.Telemetry)
	if u.TelemetryIndex == "" || strings.ContainsAny(u.TelemetryIndex, " ,*\"\\/|<>?#") || strings.ToLower(u.TelemetryIndex) != u.TelemetryIndex {
		p.add("APMTEL_TELEMETRY_INDEX", "%q is not a valid index name", u.TelemetryIndex)
	}
	if u.TelemetryEndpoint != "" {
		pu, err := url.Parse(u.TelemetryEndpoint)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			p.add("APMTEL_TELEMETRY_ENDPOINT", "%q is not an http(s) URL", RedactURL(u.TelemetryEndpoint))
		}
		if u.TelemetryJWKS == "" {
			p.add("APMTEL_TELEMETRY_JWKS", "required with APMTEL_TELEMETRY_ENDPOINT (the service's public key set)")
		}
		if u.Telemetry.Configured() {
			p.add("APMTEL_TELEMETRY_ENDPOINT", "set either it or APMTEL_TELEMETRY_URL, not both")
		}
	}
	return p.err()
}
