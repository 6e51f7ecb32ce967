package uploader

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/run"
)

// SnapshotChannel is the channel of Kibana's usage snapshot
// (telemetry plugin's getTelemetryChannelEndpoint, non-serverless).
const SnapshotChannel = "kibana-snapshot"

// contentEncoding is the X-Elastic-Content-Encoding Kibana sends: the body
// is a JWE whose content is AES-256-GCM encrypted.
const contentEncoding = "aes256gcm"

// preferredKIDs are the key ids of Kibana's telemetry JWKS, production first.
var preferredKIDs = []string{"kibana1", "kibana_dev1"}

// ChannelSink sends the envelope the way Kibana's telemetry plugin does:
// POST {endpoint}/v3/send/kibana-snapshot, the JSON document encrypted as a
// compact JWE (RSA-OAEP key wrapping, A256GCM content) for a key of the
// service's public JWK set.
type ChannelSink struct {
	URL     string
	KeyID   string
	Key     *rsa.PublicKey
	HTTP    *http.Client
	Timeout time.Duration
	// StackVersion is sent as X-Elastic-Stack-Version when the envelope
	// does not know Kibana's version (then: the Elasticsearch version).
	StackVersion string
}

// NewChannelSink builds the sink for endpoint (the service's base URL,
// Kibana's https://telemetry.elastic.co/) from the JSON of a public JWK set.
// It picks the key with kid kibana1, else kibana_dev1, else the set's only
// RSA encryption key.
func NewChannelSink(endpoint string, jwks []byte, timeout time.Duration) (*ChannelSink, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		return nil, fmt.Errorf("telemetry JWKS: %w", err)
	}
	usable := func(k jose.JSONWebKey) (*rsa.PublicKey, bool) {
		pub, ok := k.Key.(*rsa.PublicKey)
		if !ok {
			if priv, isPriv := k.Key.(*rsa.PrivateKey); isPriv {
				pub, ok = &priv.PublicKey, true
			}
		}
		return pub, ok && (k.Use == "" || k.Use == "enc") && (k.Algorithm == "" || k.Algorithm == string(jose.RSA_OAEP))
	}
	pick := func() (jose.JSONWebKey, *rsa.PublicKey, error) {
		for _, kid := range preferredKIDs {
			for _, k := range set.Key(kid) {
				if pub, ok := usable(k); ok {
					return k, pub, nil
				}
			}
		}
		var found []jose.JSONWebKey
		var pubs []*rsa.PublicKey
		for _, k := range set.Keys {
			if pub, ok := usable(k); ok {
				found, pubs = append(found, k), append(pubs, pub)
			}
		}
		if len(found) == 1 {
			return found[0], pubs[0], nil
		}
		var kids []string
		for _, k := range set.Keys {
			kids = append(kids, k.KeyID)
		}
		return jose.JSONWebKey{}, nil, fmt.Errorf("telemetry JWKS: no RSA-OAEP encryption key with kid %s, and %d candidates among %q",
			strings.Join(preferredKIDs, " or "), len(found), kids)
	}
	k, pub, err := pick()
	if err != nil {
		return nil, err
	}
	return &ChannelSink{
		URL:     strings.TrimSuffix(endpoint, "/") + "/v3/send/" + SnapshotChannel,
		KeyID:   k.KeyID,
		Key:     pub,
		HTTP:    &http.Client{},
		Timeout: timeout,
	}, nil
}

// Encrypt returns the compact JWE of env's JSON, the body Kibana sends.
func (s *ChannelSink) Encrypt(env Envelope) (string, error) {
	plain, err := json.Marshal(env)
	if err != nil {
		return "", err
	}
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.RSA_OAEP, Key: s.Key, KeyID: s.KeyID}, nil)
	if err != nil {
		return "", fmt.Errorf("telemetry encryption: %w", err)
	}
	obj, err := enc.Encrypt(plain)
	if err != nil {
		return "", fmt.Errorf("telemetry encryption: %w", err)
	}
	return obj.CompactSerialize()
}

// Put sends env once; the telemetry service keys documents by cluster and
// time itself, so id is not sent. A 4xx answer is an *es.Error with a
// permanent status, so the upload is not retried in vain.
func (s *ChannelSink) Put(ctx context.Context, id string, env Envelope) (Delivery, error) {
	body, err := s.Encrypt(env)
	if err != nil {
		return Delivery{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, strings.NewReader(body))
	if err != nil {
		return Delivery{}, err
	}
	version := env.KibanaVersion()
	if version == "" {
		version = s.StackVersion
	}
	if version == "" {
		version = env.Version
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Elastic-Stack-Version", version)
	req.Header.Set("X-Elastic-Cluster-ID", env.ClusterUUID)
	req.Header.Set("X-Elastic-Content-Encoding", contentEncoding)
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return Delivery{}, fmt.Errorf("send telemetry document %s: %w", id, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return Delivery{}, fmt.Errorf("send telemetry document %s to %s: %w", id, s.URL, &es.Error{Status: resp.StatusCode, Reason: string(bytes.TrimSpace(msg))})
	}
	return Delivery{Where: s.URL, State: run.UploadUploaded}, nil
}

// Target names the URL posted to.
func (s *ChannelSink) Target(string) string { return "POST " + s.URL }
