package deploy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"sigs.k8s.io/yaml"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/jobs"
)

const chart = "helm/apmtel"

// kedaListKey is the key the chart's ScaledObject watches.
const kedaListKey = "asynq:{telemetry}:pending"

// helm returns the Helm binary: $APMTEL_HELM (scripts/test.sh sets it), or
// the one scripts/helm.sh has already built. Building takes minutes, so a
// local run without it skips; under CI=true it fails.
func helm(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("APMTEL_HELM"); p != "" {
		return p
	}
	out, err := exec.Command("../scripts/helm.sh", "--cached").Output()
	if err == nil {
		return strings.TrimSpace(string(out))
	}
	msg := "helm is not built: run scripts/helm.sh --path once (builds Helm v3.22.0 from the Go module proxy, a few minutes) or set APMTEL_HELM"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func runHelm(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(helm(t), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// valueSets are the values the chart is linted and rendered with.
var valueSets = map[string][]string{
	"default": nil,
	"hpa":     {"-f", chart + "/ci/hpa-values.yaml"},
	"keda":    {"-f", chart + "/ci/keda-values.yaml"},
	"fleet":   {"-f", chart + "/ci/fleet-values.yaml"},
}

func TestHelmLint(t *testing.T) {
	for name, vals := range valueSets {
		t.Run(name, func(t *testing.T) {
			runHelm(t, append([]string{"lint", "--strict", chart}, vals...)...)
		})
	}
}

type object struct {
	APIVersion string                `json:"apiVersion"`
	Kind       string                `json:"kind"`
	Metadata   struct{ Name string } `json:"metadata"`
	Data       map[string]string     `json:"data"`
	Spec       map[string]any        `json:"spec"`
}

type envVar struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct{ Name, Key string } `json:"secretKeyRef"`
	} `json:"valueFrom"`
}

type probe struct {
	HTTPGet *struct {
		Path string `json:"path"`
		Port any    `json:"port"`
	} `json:"httpGet"`
}

type container struct {
	Name  string   `json:"name"`
	Args  []string `json:"args"`
	Env   []envVar `json:"env"`
	Ports []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
	} `json:"ports"`
	LivenessProbe  *probe `json:"livenessProbe"`
	ReadinessProbe *probe `json:"readinessProbe"`
}

type deployment struct {
	Spec struct {
		Replicas *int `json:"replicas"`
		Template struct {
			Spec struct {
				TerminationGracePeriodSeconds *int `json:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot bool `json:"runAsNonRoot"`
				} `json:"securityContext"`
				Containers []container `json:"containers"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// render runs helm template and returns the objects by "Kind/name" and the
// raw documents of each.
func render(t *testing.T, vals []string) (map[string]object, map[string]string) {
	t.Helper()
	out := runHelm(t, append([]string{"template", "apmtel", chart}, vals...)...)
	objs, raw := map[string]object{}, map[string]string{}
	for _, doc := range docSep.Split(out, -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var o object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("rendered document does not parse: %v\n%s", err, doc)
		}
		if o.Kind == "" {
			continue
		}
		k := o.Kind + "/" + o.Metadata.Name
		objs[k], raw[k] = o, doc
	}
	return objs, raw
}

func deploymentOf(t *testing.T, raw map[string]string, name string) deployment {
	t.Helper()
	doc, ok := raw["Deployment/"+name]
	if !ok {
		t.Fatalf("no Deployment %s", name)
	}
	var d deployment
	if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%s has %d containers", name, len(d.Spec.Template.Spec.Containers))
	}
	return d
}

func env(c container, name string) (envVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return envVar{}, false
}

func TestHelmManifests(t *testing.T) {
	known, secret := knownOptions(), secretOptions()
	for name, vals := range valueSets {
		t.Run(name, func(t *testing.T) {
			objs, raw := render(t, vals)
			// Every APMTEL_* name anywhere in the chart's output is a setting.
			for k, doc := range raw {
				for _, n := range regexp.MustCompile(`APMTEL_[A-Z0-9_]+`).FindAllString(doc, -1) {
					if !known[n] {
						t.Errorf("%s names %s, which is no apmtel setting (config.Options)", k, n)
					}
				}
			}
			for k := range objs["ConfigMap/apmtel"].Data {
				if secret[k] {
					t.Errorf("ConfigMap holds secret setting %s; use secrets:", k)
				}
			}
			type want struct {
				args            string
				live, ready     string
				httpAddrPortVar bool
			}
			comps := map[string]want{
				"apmtel-scheduler": {"scheduler", "/healthz", "/readyz", true},
				"apmtel-worker":    {"worker", "/healthz", "/readyz", true},
				"apmtel-monitor":   {"monitor", "/healthz", "/healthz", false},
			}
			for dn, w := range comps {
				d := deploymentOf(t, raw, dn)
				c := d.Spec.Template.Spec.Containers[0]
				if strings.Join(c.Args, " ") != w.args {
					t.Errorf("%s runs %v", dn, c.Args)
				}
				if !d.Spec.Template.Spec.SecurityContext.RunAsNonRoot {
					t.Errorf("%s: runAsNonRoot is off", dn)
				}
				for _, p := range []struct {
					what string
					pr   *probe
					path string
				}{{"liveness", c.LivenessProbe, w.live}, {"readiness", c.ReadinessProbe, w.ready}} {
					if p.pr == nil || p.pr.HTTPGet == nil {
						t.Errorf("%s has no %s httpGet probe, want %s", dn, p.what, p.path)
						continue
					}
					if p.pr.HTTPGet.Path != p.path {
						t.Errorf("%s %s probe on %s, want %s", dn, p.what, p.pr.HTTPGet.Path, p.path)
					}
					if len(c.Ports) != 1 || fmt.Sprint(p.pr.HTTPGet.Port) != c.Ports[0].Name {
						t.Errorf("%s %s probe port %v is not the container port %+v", dn, p.what, p.pr.HTTPGet.Port, c.Ports)
					}
				}
				addrVar := "APMTEL_MONITOR_ADDR"
				if w.httpAddrPortVar {
					addrVar = "APMTEL_HTTP_ADDR"
				}
				if e, ok := env(c, addrVar); !ok || len(c.Ports) != 1 || !strings.HasSuffix(e.Value, fmt.Sprintf(":%d", c.Ports[0].ContainerPort)) {
					t.Errorf("%s %s = %q does not listen on the probed port %+v", dn, addrVar, e.Value, c.Ports)
				}
				for _, e := range c.Env {
					if secret[e.Name] && (e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
						t.Errorf("%s %s is not read from a Secret", dn, e.Name)
					}
				}
				if _, ok := env(c, "APMTEL_MONITOR_TOKEN"); !ok {
					t.Errorf("%s has no APMTEL_MONITOR_TOKEN, so it refuses to listen on its pod IP", dn)
				}
			}
			sched := deploymentOf(t, raw, "apmtel-scheduler")
			if r := sched.Spec.Replicas; r == nil || *r != 2 {
				t.Errorf("scheduler replicas = %v, want 2", r)
			}
			worker := deploymentOf(t, raw, "apmtel-worker")
			if g := worker.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= config.Default().Timing().ShutdownTimeout {
				got := "unset (30)"
				if g != nil {
					got = fmt.Sprint(*g)
				}
				t.Errorf("worker terminationGracePeriodSeconds %s must be set above config.Default().Timing().ShutdownTimeout %s", got, config.Default().Timing().ShutdownTimeout)
			}
			if _, ok := objs["PodDisruptionBudget/apmtel-worker"]; !ok {
				t.Error("no PodDisruptionBudget for workers")
			}
			if _, ok := objs["Service/apmtel-monitor"]; !ok {
				t.Error("no Service for the monitor")
			}
			mon := deploymentOf(t, raw, "apmtel-monitor").Spec.Template.Spec.Containers[0]
			ro, _ := env(mon, "APMTEL_MONITOR_READ_ONLY")
			wantRO := map[string]string{"default": "true", "hpa": "true", "keda": "false", "fleet": "true"}[name]
			if ro.Value != wantRO {
				t.Errorf("monitor APMTEL_MONITOR_READ_ONLY = %q, want %q", ro.Value, wantRO)
			}

			hpa, hasHPA := objs["HorizontalPodAutoscaler/apmtel-worker"]
			so, hasKEDA := objs["ScaledObject/apmtel-worker"]
			if hasHPA != (name == "hpa") || hasKEDA != (name == "keda") {
				t.Fatalf("HPA %v, ScaledObject %v with values %q", hasHPA, hasKEDA, name)
			}
			if (worker.Spec.Replicas == nil) != (hasHPA || hasKEDA) {
				t.Errorf("worker replicas %v: fixed without an autoscaler, absent with one", worker.Spec.Replicas)
			}
			if hasHPA {
				ref := hpa.Spec["scaleTargetRef"].(map[string]any)
				if ref["kind"] != "Deployment" || ref["name"] != "apmtel-worker" {
					t.Errorf("HPA targets %v", ref)
				}
			}
			if hasKEDA {
				if ref := so.Spec["scaleTargetRef"].(map[string]any); ref["name"] != "apmtel-worker" {
					t.Errorf("ScaledObject targets %v", ref)
				}
				trig := so.Spec["triggers"].([]any)[0].(map[string]any)
				md := trig["metadata"].(map[string]any)
				if trig["type"] != "redis" || md["listName"] != kedaListKey {
					t.Errorf("KEDA trigger %v, want type redis on list %s", trig, kedaListKey)
				}
				if md["address"] != objs["ConfigMap/apmtel"].Data["APMTEL_REDIS_ADDR"] {
					t.Errorf("KEDA watches Redis %v, workers use %v", md["address"], objs["ConfigMap/apmtel"].Data["APMTEL_REDIS_ADDR"])
				}
				auth := objs["TriggerAuthentication/apmtel-redis"]
				ta := auth.Spec["secretTargetRef"].([]any)[0].(map[string]any)
				wp, _ := env(worker.Spec.Template.Spec.Containers[0], "APMTEL_REDIS_PASSWORD")
				if ta["parameter"] != "password" || wp.ValueFrom == nil || ta["name"] != wp.ValueFrom.SecretKeyRef.Name || ta["key"] != wp.ValueFrom.SecretKeyRef.Key {
					t.Errorf("KEDA's Redis password %v differs from the workers' %+v", ta, wp.ValueFrom)
				}
			}
		})
	}
}

// The chart refuses values that would deploy something broken.
func TestHelmRejects(t *testing.T) {
	tests := []struct {
		set  []string
		want string
	}{
		{[]string{"worker.autoscaling.hpa.enabled=true", "worker.autoscaling.keda.enabled=true"}, "enable hpa or keda, not both"},
		{[]string{"secrets.APMTEL_MONITOR_TOKEN=null"}, "secrets.APMTEL_MONITOR_TOKEN is required"},
		{[]string{"fleet.enabled=true"}, "fleet.enabled needs fleet.clusters"},
		{[]string{"fleet.enabled=true", "fleet.clusters[0].name=a", "fleet.clusters[0].api_key=s3cr3t"}, "fleet.clusters[0].api_key: secrets go into a Secret"},
		{[]string{"fleet.enabled=true", "fleet.clusters[0].name=a", "fleet.clusters[0].password=s3cr3t"}, "fleet.clusters[0].password: secrets go into a Secret"},
	}
	for _, tt := range tests {
		args := []string{"template", "apmtel", chart}
		for _, s := range tt.set {
			args = append(args, "--set", s)
		}
		out, err := exec.Command(helm(t), args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tt.want) {
			t.Errorf("helm template --set %v: err %v, output %q; want an error %q", tt.set, err, out, tt.want)
		}
	}
}

// TestKEDAListKeyIsAsynqs enqueues a collect job with asynq's own client
// into a real Redis and finds the list holding it: that is the key the
// ScaledObject must watch, and the chart's docs name it.
func TestKEDAListKeyIsAsynqs(t *testing.T) {
	rdb, db := testenv.RedisDB(t)
	ctx := context.Background()
	client := asynq.NewClient(asynq.RedisClientOpt{Addr: testenv.RedisAddr(t), DB: db})
	defer client.Close()
	info, err := client.Enqueue(asynq.NewTask("probe", nil), asynq.Queue(jobs.QueueCollect))
	if err != nil {
		t.Fatal(err)
	}
	var lists []string
	iter := rdb.Scan(ctx, 0, "*", 100).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		if typ, _ := rdb.Type(ctx, k).Result(); typ != "list" {
			continue
		}
		ids, _ := rdb.LRange(ctx, k, 0, -1).Result()
		for _, id := range ids {
			if id == info.ID {
				lists = append(lists, k)
			}
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if len(lists) != 1 || lists[0] != kedaListKey {
		t.Fatalf("the pending job %s sits in lists %v, the chart watches %s", info.ID, lists, kedaListKey)
	}
	if n, _ := rdb.LLen(ctx, kedaListKey).Result(); n != 1 {
		t.Errorf("LLEN %s = %d, want 1", kedaListKey, n)
	}
	for _, f := range []string{chart + "/templates/worker-keda.yaml", chart + "/README.md", chart + "/values.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), kedaListKey) {
			t.Errorf("%s does not name %s", f, kedaListKey)
		}
	}
}
