package deploy

import (
	"path"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// podVolumes is the part of a Deployment the fleet checks read.
type podVolumes struct {
	Spec struct {
		Template struct {
			Spec struct {
				Volumes []struct {
					Name      string `json:"name"`
					ConfigMap *struct {
						Name string `json:"name"`
					} `json:"configMap"`
					Secret *struct {
						SecretName string `json:"secretName"`
					} `json:"secret"`
				} `json:"volumes"`
				Containers []struct {
					Env          []envVar `json:"env"`
					VolumeMounts []struct {
						Name      string `json:"name"`
						MountPath string `json:"mountPath"`
						SubPath   string `json:"subPath"`
						ReadOnly  bool   `json:"readOnly"`
					} `json:"volumeMounts"`
				} `json:"containers"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

// With fleet values the chart renders the clusters file into a ConfigMap
// of its own that apmtel parses, with no secret in it; every component
// mounts it (whole, so updates reach the pod) where APMTEL_CLUSTERS_FILE
// points, mounts each listed Secret as files, and every api_key_file,
// password_file and ca_cert of the file lies in a mounted Secret; no
// APMTEL_SOURCE_* setting is left beside the file. Without them, nothing
// of the fleet is rendered.
func TestHelmFleet(t *testing.T) {
	objs, _ := render(t, nil)
	if _, ok := objs["ConfigMap/apmtel-clusters"]; ok {
		t.Error("default values render a clusters ConfigMap")
	}
	if _, ok := objs["ConfigMap/apmtel"].Data["APMTEL_CLUSTERS_FILE"]; ok {
		t.Error("default values set APMTEL_CLUSTERS_FILE")
	}
	if objs["ConfigMap/apmtel"].Data["APMTEL_SOURCE_URL"] == "" {
		t.Error("default values lost APMTEL_SOURCE_URL")
	}

	objs, raw := render(t, valueSets["fleet"])
	file := objs["ConfigMap/apmtel"].Data["APMTEL_CLUSTERS_FILE"]
	if file != "/etc/apmtel/clusters/clusters.yml" {
		t.Fatalf("APMTEL_CLUSTERS_FILE = %q", file)
	}
	for k := range objs["ConfigMap/apmtel"].Data {
		if strings.HasPrefix(k, "APMTEL_SOURCE_") {
			t.Errorf("ConfigMap/apmtel sets %s beside APMTEL_CLUSTERS_FILE", k)
		}
	}
	cm, ok := objs["ConfigMap/apmtel-clusters"]
	if !ok {
		t.Fatal("no ConfigMap apmtel-clusters")
	}
	data := cm.Data[path.Base(file)]
	if len(cm.Data) != 1 || data == "" {
		t.Fatalf("ConfigMap apmtel-clusters holds %v, want %s only", cm.Data, path.Base(file))
	}
	entries := loadClustersExample(t, "ConfigMap apmtel-clusters", []byte(data))
	if len(entries) != 3 {
		t.Errorf("clusters file has %d entries, want the 3 of ci/fleet-values.yaml", len(entries))
	}
	// No secret in the ConfigMap: apmtel's parser refuses any key but the
	// *_file references, and no secret-looking key is in the raw text.
	var generic struct {
		Clusters []map[string]any `json:"clusters"`
	}
	if err := yaml.Unmarshal([]byte(data), &generic); err != nil {
		t.Fatal(err)
	}
	for _, c := range generic.Clusters {
		for k := range c {
			if (strings.Contains(k, "key") || strings.Contains(k, "password")) && !strings.HasSuffix(k, "_file") {
				t.Errorf("cluster %v has key %s in the ConfigMap", c["name"], k)
			}
		}
	}

	for _, dn := range []string{"apmtel-scheduler", "apmtel-worker", "apmtel-monitor"} {
		var d podVolumes
		if err := yaml.Unmarshal([]byte(raw["Deployment/"+dn]), &d); err != nil {
			t.Fatal(err)
		}
		pod := d.Spec.Template.Spec
		kind := map[string]string{} // volume name -> "configMap:<name>" or "secret:<name>"
		for _, v := range pod.Volumes {
			switch {
			case v.ConfigMap != nil:
				kind[v.Name] = "configMap:" + v.ConfigMap.Name
			case v.Secret != nil:
				kind[v.Name] = "secret:" + v.Secret.SecretName
			}
		}
		c := pod.Containers[0]
		for _, e := range c.Env {
			if strings.HasPrefix(e.Name, "APMTEL_SOURCE_") {
				t.Errorf("%s sets %s beside APMTEL_CLUSTERS_FILE", dn, e.Name)
			}
		}
		secretDirs := map[string]string{} // mount path -> Secret
		clustersMounted := false
		for _, m := range c.VolumeMounts {
			k := kind[m.Name]
			if k == "configMap:apmtel-clusters" {
				if m.MountPath != path.Dir(file) || m.SubPath != "" || !m.ReadOnly {
					t.Errorf("%s mounts the clusters ConfigMap at %s (subPath %q, readOnly %v), want the whole of it read-only at %s", dn, m.MountPath, m.SubPath, m.ReadOnly, path.Dir(file))
				}
				clustersMounted = true
			}
			if name, ok := strings.CutPrefix(k, "secret:"); ok {
				if m.SubPath != "" || !m.ReadOnly {
					t.Errorf("%s mounts Secret %s with subPath %q, readOnly %v; want the whole Secret read-only (rotation)", dn, name, m.SubPath, m.ReadOnly)
				}
				secretDirs[m.MountPath] = name
			}
		}
		if !clustersMounted {
			t.Errorf("%s does not mount ConfigMap apmtel-clusters (volumes %v)", dn, kind)
		}
		for _, want := range []string{"apmtel-prod-eu", "apmtel-prod-us"} {
			if secretDirs["/etc/apmtel/secrets/"+want] != want {
				t.Errorf("%s does not mount Secret %s at /etc/apmtel/secrets/%s: %v", dn, want, want, secretDirs)
			}
		}
		for _, e := range entries {
			for what, p := range map[string]string{"api_key_file": e.APIKeyFile, "password_file": e.PasswordFile, "ca_cert": e.CACert} {
				if p == "" {
					continue
				}
				if _, ok := secretDirs[path.Dir(p)]; !ok {
					t.Errorf("cluster %s %s = %s: %s mounts no Secret at %s (%v)", e.Name, what, p, dn, path.Dir(p), secretDirs)
				}
			}
		}
	}
}
