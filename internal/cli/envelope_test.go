package cli

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/runtest"
	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/internal/uploader"
	"github.com/apmtel/apmtel/scheduler"
)

// preview --envelope against the search engine prints the whole document
// on stdout, and its id and target on stderr; nothing is written.
func TestPreviewEnvelope(t *testing.T) { testenv.Engines(t, previewEnvelopeOn) }

func previewEnvelopeOn(t *testing.T, engine testenv.Engine) {
	url := engine.URL
	c := engine.Client(t)
	p := testenv.Prefix(t, c)
	ix := testenv.Indices(p)
	dir := t.TempDir()
	env := map[string]string{
		"APMTEL_SOURCE_URL": url, "APMTEL_DATA_DIR": dir, "APMTEL_KIBANA_VERSION": "9.2.0-SNAPSHOT", "APMTEL_SEARCH_CONCURRENCY": "0",
		"APMTEL_INDICES_TRANSACTION": ix.Transaction, "APMTEL_INDICES_SPAN": ix.Span, "APMTEL_INDICES_ERROR": ix.Error,
		"APMTEL_INDICES_METRIC": ix.Metric, "APMTEL_INDICES_ONBOARDING": ix.Onboarding,
		"APMTEL_INDICES_AGENT_CONFIGURATION": ix.AgentConfiguration, "APMTEL_INDICES_KIBANA": ix.Kibana,
	}
	out, errOut, code := runMain(env, "preview", "--envelope", "--task", "cardinality", "--task", "cloud")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc struct {
		ClusterUUID      string `json:"cluster_uuid"`
		CollectionSource string `json:"collectionSource"`
		Collection       string `json:"collection"`
		CacheDetails     struct {
			UpdatedAt string `json:"updatedAt"`
			FetchedAt string `json:"fetchedAt"`
		} `json:"cacheDetails"`
		License      map[string]any `json:"license"`
		ClusterStats struct {
			Nodes struct {
				Count struct {
					Total int `json:"total"`
				} `json:"count"`
			} `json:"nodes"`
		} `json:"cluster_stats"`
		StackStats struct {
			Kibana struct {
				Versions []struct {
					Version string `json:"version"`
				} `json:"versions"`
				Plugins struct {
					APM map[string]json.RawMessage `json:"apm"`
				} `json:"plugins"`
			} `json:"kibana"`
		} `json:"stack_stats"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("stdout is not the document: %v\n%s", err, out)
	}
	if doc.CollectionSource != "apmtel" || doc.Collection != "local" || doc.ClusterStats.Nodes.Count.Total < 1 ||
		len(doc.StackStats.Kibana.Versions) != 1 || doc.StackStats.Kibana.Versions[0].Version != "9.2.0" {
		t.Errorf("document %s", out)
	}
	if doc.CacheDetails.UpdatedAt == "" || doc.CacheDetails.FetchedAt < doc.CacheDetails.UpdatedAt {
		t.Errorf("cacheDetails %+v", doc.CacheDetails)
	}
	// Only Elasticsearch has _license; OpenSearch's document has none, as Kibana
	// leaves an absent license out.
	if hasLicense := doc.License["type"] != nil; hasLicense != (engine.Name == testenv.Elasticsearch) {
		t.Errorf("license %v on %s", doc.License, engine.Name)
	}
	if _, ok := doc.StackStats.Kibana.Plugins.APM["cloud"]; !ok {
		t.Errorf("apm object %s", out)
	}
	wantID := doc.ClusterUUID + ":sched-"
	target := filepath.Join(dir, "payloads", doc.ClusterUUID+"_sched-")
	if !strings.Contains(errOut, "document id: "+wantID) || !regexp.MustCompile(`target: `+regexp.QuoteMeta(target)+`\S* \(not sent: preview\)`).MatchString(errOut) {
		t.Errorf("stderr %q", errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "payloads")); !os.IsNotExist(err) {
		t.Errorf("preview wrote payloads: %v", err)
	}

	// The slot's run is sealed and written already: preview names no file
	// of it as its target.
	rdb, db := testenv.RedisDB(t)
	slot := scheduler.ScheduledRunID(scheduler.SlotStart(time.Now(), config.Default().Interval))
	st := run.NewStore(rdb, keys.NewFor(keys.DefaultPrefix, keys.DefaultSource), time.Hour, 50)
	if _, err := runtest.Seed(context.Background(), st, runtest.Spec{ID: slot, Kind: run.KindFull, Tasks: []string{"cloud"},
		Start: time.Now().Add(-time.Minute), Upload: run.UploadWritten}); err != nil {
		t.Fatal(err)
	}
	env["APMTEL_SEARCH_CONCURRENCY"], env["APMTEL_REDIS_ADDR"], env["APMTEL_REDIS_DB"] = "2", testenv.RedisAddr(t), fmt.Sprint(db)
	_, errOut, code = runMain(env, "preview", "--envelope", "--task", "cloud")
	if code != 0 || !strings.Contains(errOut, "target: none (not sent: preview); the slot's run "+slot+" is sealed, its upload written") ||
		strings.Contains(errOut, target) {
		t.Errorf("preview --envelope with the slot's run sealed: exit %d, %q", code, errOut)
	}
}

func TestNewSinkSelectsKibanaChannel(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "kibana1", Use: "enc", Algorithm: "RSA-OAEP"}}})
	path := filepath.Join(t.TempDir(), "jwks.json")
	_ = os.WriteFile(path, b, 0o600)
	cfg := config.Default()
	cfg.TelemetryEndpoint, cfg.TelemetryJWKS = "https://telemetry.example/", path
	s, err := newSink(cfg, zerolog.Nop())
	if cs, ok := s.(*uploader.ChannelSink); err != nil || !ok || cs.URL != "https://telemetry.example/v3/send/kibana-snapshot" {
		t.Errorf("sink %T %v", s, err)
	}
	cfg.TelemetryJWKS = filepath.Join(t.TempDir(), "missing.json")
	if _, err := newSink(cfg, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "APMTEL_TELEMETRY_JWKS") {
		t.Errorf("missing JWKS: %v", err)
	}
	if s, _ := newSink(config.Default(), zerolog.Nop()); func() bool { _, ok := s.(uploader.FileSink); return !ok }() {
		t.Errorf("default sink %T", s)
	}
}
