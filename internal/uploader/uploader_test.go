package uploader

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestBuildAndFileSink(t *testing.T) {
	info := Source{ClusterUUID: "u1", ClusterName: "c1", Version: "8.15.0"}
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	env, err := Build(info, at, json.RawMessage(`{"cloud":{"provider":["aws"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path, err := FileSink{Dir: dir}.Put(context.Background(), DocID("u1", "sched-1"), env)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "u1_sched-1.json"); path != want {
		t.Errorf("path %s, want %s", path, want)
	}
	b, _ := os.ReadFile(path)
	var got struct {
		ClusterUUID string `json:"cluster_uuid"`
		Timestamp   string `json:"timestamp"`
		Collection  string `json:"collection"`
		StackStats  struct {
			Kibana struct {
				Plugins struct {
					APM struct {
						Cloud struct {
							Provider []string `json:"provider"`
						} `json:"cloud"`
					} `json:"apm"`
				} `json:"plugins"`
			} `json:"kibana"`
		} `json:"stack_stats"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.ClusterUUID != "u1" || got.Timestamp != "2026-11-26T12:00:00Z" || got.Collection != "local" ||
		len(got.StackStats.Kibana.Plugins.APM.Cloud.Provider) != 1 {
		t.Errorf("envelope %s", b)
	}
	if _, err := Build(info, at, json.RawMessage(`{broken`)); err == nil {
		t.Error("invalid JSON accepted")
	}
	if _, err := Build(Source{}, at, json.RawMessage(`{}`)); err == nil {
		t.Error("envelope without cluster_uuid accepted")
	}
}
