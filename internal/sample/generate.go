package sample

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/apmtel/apmtel/internal/es"
)

func asES(err error, target **es.Error) bool { return errors.As(err, target) }

// Options shape the generated data.
type Options struct {
	Services int
	Days     int
	Docs     int
	Seed     int64
	// Bulk is the number of documents per bulk request.
	Bulk int
	// Parallel is the number of bulk requests in flight (default 2).
	Parallel int
	// Prefix is put before every index name (tests isolate their data with it).
	Prefix string
	Now    time.Time
	// Progress receives progress lines; nil is silent.
	Progress io.Writer
}

// Stats count what was written.
type Stats struct {
	Docs     int
	ByIndex  map[string]int
	Duration time.Duration
}

type service struct {
	name, env, agent, agentVersion, activation string
	lang, langVersion, framework, fwVersion    string
	runtime, rtVersion                         string
	host, platform, provider, region, zone     string
	container, pod                             string
}

var agentProfiles = []struct {
	agent, lang, runtime, framework string
	versions                        []string
}{
	{"java", "Java", "Java", "Spring Web MVC", []string{"1.38.0", "1.45.0"}},
	{"nodejs", "javascript", "node", "express", []string{"4.1.0", "3.49.1"}},
	{"python", "python", "CPython", "django", []string{"6.19.0"}},
	{"go", "go", "gc", "gin", []string{"2.4.1"}},
	{"ruby", "ruby", "ruby", "Rails", []string{"4.7.0"}},
	{"dotnet", "C#", ".NET Core", "ASP.NET Core", []string{"1.25.0"}},
	{"rum-js", "javascript", "", "", []string{"5.16.0"}},
	{"opentelemetry/java", "java", "OpenJDK Runtime Environment", "", []string{"1.32.0"}},
	{"otlp/python", "python", "CPython", "", []string{"1.20.0"}},
}

func newServices(r *rand.Rand, n int) []service {
	envs := []string{"production", "staging", ""}
	clouds := []struct{ provider, region string }{{"aws", "us-east-1"}, {"gcp", "europe-west1"}, {"azure", "westeurope"}}
	out := make([]service, n)
	for i := range out {
		p := agentProfiles[i%len(agentProfiles)]
		c := clouds[r.IntN(len(clouds))]
		out[i] = service{
			name: fmt.Sprintf("svc-%s-%d", shortName(p.agent), i), env: envs[r.IntN(len(envs))],
			agent: p.agent, agentVersion: p.versions[r.IntN(len(p.versions))], activation: []string{"javaagent-flag", "k8s-attach", "require"}[r.IntN(3)],
			lang: p.lang, langVersion: "1." + fmt.Sprint(r.IntN(20)), framework: p.framework, fwVersion: "3." + fmt.Sprint(r.IntN(5)),
			runtime: p.runtime, rtVersion: "17.0." + fmt.Sprint(r.IntN(9)),
			host: fmt.Sprintf("host-%d", r.IntN(1000)), platform: []string{"linux", "linux", "windows", "darwin"}[r.IntN(4)],
			provider: c.provider, region: c.region, zone: c.region + string(rune('a'+r.IntN(3))),
			container: fmt.Sprintf("%012x", r.Uint64()&0xffffffffffff), pod: fmt.Sprintf("pod-%d", r.IntN(100)),
		}
	}
	return out
}

func shortName(agent string) string {
	b := []byte(agent)
	for i, c := range b {
		if c == '/' {
			b[i] = '-'
		}
	}
	return string(b)
}

// generator produces documents deterministically.
type generator struct {
	r        *rand.Rand
	o        Options
	services []service
	traceID  string
	rootID   string
}

func (g *generator) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[g.r.IntN(16)]
	}
	return string(b)
}

func (g *generator) doc(i int) Doc {
	s := g.services[g.r.IntN(len(g.services))]
	age := time.Duration(g.r.Int64N(int64(time.Duration(g.o.Days) * 24 * time.Hour)))
	ts := g.o.Now.Add(-age).UTC()
	src := map[string]any{
		"@timestamp": ts.Format(time.RFC3339Nano),
		"agent":      map[string]any{"name": s.agent, "version": s.agentVersion, "activation_method": s.activation},
		"service": map[string]any{
			"name": s.name, "version": "1.0." + fmt.Sprint(i%3), "node": map[string]any{"name": s.host},
			"language": map[string]any{"name": s.lang, "version": s.langVersion},
		},
		"host":       map[string]any{"name": s.host, "os": map[string]any{"platform": s.platform}},
		"cloud":      map[string]any{"provider": s.provider, "region": s.region, "availability_zone": s.zone},
		"observer":   map[string]any{"version": "8.15." + fmt.Sprint(i%2), "hostname": "apm-server-1"},
		"container":  map[string]any{"id": s.container},
		"kubernetes": map[string]any{"pod": map[string]any{"name": s.pod}},
		"labels":     map[string]any{"team": []string{"a", "b", "c"}[g.r.IntN(3)]},
	}
	svc := src["service"].(map[string]any)
	if s.env != "" {
		svc["environment"] = s.env
	}
	if s.framework != "" {
		svc["framework"] = map[string]any{"name": s.framework, "version": s.fwVersion}
	}
	if s.runtime != "" {
		svc["runtime"] = map[string]any{"name": s.runtime, "version": s.rtVersion}
	}
	p := g.o.Prefix
	switch k := g.r.IntN(100); {
	case k < 40:
		if g.r.IntN(3) == 0 || g.traceID == "" {
			g.traceID, g.rootID = g.hex(32), g.hex(16)
		} else {
			src["parent"] = map[string]any{"id": g.rootID}
		}
		src["trace"] = map[string]any{"id": g.traceID}
		src["processor"] = map[string]any{"event": "transaction"}
		typ := "request"
		if s.agent == "rum-js" {
			typ = "page-load"
			src["user_agent"] = map[string]any{"name": "Chrome", "original": "Mozilla/5.0 Chrome/" + fmt.Sprint(100+g.r.IntN(20))}
			src["client"] = map[string]any{"geo": map[string]any{"country_iso_code": []string{"US", "DE", "FR", "JP"}[g.r.IntN(4)]}}
		}
		src["transaction"] = map[string]any{"name": fmt.Sprintf("GET /api/%d", g.r.IntN(20)), "type": typ, "result": "HTTP 2xx", "id": g.hex(16)}
		return Doc{Index: p + "traces-apm-default", Source: src}
	case k < 75:
		src["processor"] = map[string]any{"event": "span"}
		src["trace"] = map[string]any{"id": g.traceID}
		src["parent"] = map[string]any{"id": g.rootID}
		src["span"] = map[string]any{"destination": map[string]any{"service": map[string]any{"resource": []string{"postgresql", "redis", "elasticsearch", "kafka/orders"}[g.r.IntN(4)]}}}
		return Doc{Index: p + "traces-apm-default", Source: src}
	case k < 80:
		src["processor"] = map[string]any{"event": "error"}
		src["error"] = map[string]any{"grouping_key": g.hex(8)[:2]}
		src["trace"] = map[string]any{"id": g.traceID}
		return Doc{Index: p + "logs-apm.error-default", Source: src}
	case k < 90:
		src["processor"] = map[string]any{"event": "metric"}
		src["metricset"] = map[string]any{"name": "app"}
		return Doc{Index: p + "metrics-apm.app." + s.name + "-default", Source: src}
	default:
		src["processor"] = map[string]any{"event": "metric"}
		ms := []string{"transaction", "service_transaction", "service_summary", "service_destination", "span_breakdown"}[g.r.IntN(5)]
		iv := []string{"1m", "10m", "60m"}[g.r.IntN(3)]
		src["metricset"] = map[string]any{"name": ms, "interval": iv}
		if ms == "span_breakdown" {
			return Doc{Index: p + "metrics-apm.internal-default", Source: src}
		}
		return Doc{Index: p + "metrics-apm." + ms + "." + iv + "-default", Source: src}
	}
}

// Load generates o.Docs documents and bulk-indexes them, o.Parallel requests
// in flight; memory holds at most Parallel+2 chunks.
func Load(ctx context.Context, d es.Doer, o Options) (Stats, error) {
	if o.Services < 1 || o.Days < 1 || o.Docs < 0 {
		return Stats{}, fmt.Errorf("sample: services and days must be at least 1, docs not negative")
	}
	if o.Bulk <= 0 {
		o.Bulk = 1000
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	start := time.Now()
	if err := PutTemplates(ctx, d, o.Prefix); err != nil {
		return Stats{}, err
	}
	r := rand.New(rand.NewPCG(uint64(o.Seed), 0x9e3779b97f4a7c15))
	g := &generator{r: r, o: o, services: newServices(r, o.Services)}
	st := Stats{ByIndex: map[string]int{}}

	if o.Parallel <= 0 {
		o.Parallel = 2
	}
	chunks := make(chan []Doc, 1)
	errc := make(chan error, o.Parallel)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for w := 0; w < o.Parallel; w++ {
		go func() {
			for c := range chunks {
				if err := Bulk(ctx, d, c, false); err != nil {
					errc <- err
					cancel()
					for range chunks {
					}
					return
				}
			}
			errc <- nil
		}()
	}
	var genErr error
	for i := 0; i < o.Docs; i += o.Bulk {
		n := min(o.Bulk, o.Docs-i)
		c := make([]Doc, n)
		for j := range c {
			c[j] = g.doc(i + j)
			st.ByIndex[c[j].Index]++
		}
		select {
		case chunks <- c:
		case <-ctx.Done():
			genErr = ctx.Err()
		}
		if genErr != nil {
			break
		}
		st.Docs += n
		if o.Progress != nil && (i/o.Bulk)%10 == 0 {
			fmt.Fprintf(o.Progress, "sample: %d/%d documents\n", st.Docs, o.Docs)
		}
	}
	close(chunks)
	var errs []error
	for w := 0; w < o.Parallel; w++ {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(append(errs, genErr)...); err != nil {
		return st, fmt.Errorf("sample: %w", err)
	}
	if err := loadExtras(ctx, d, g, o); err != nil {
		return st, err
	}
	if err := Refresh(ctx, d, o.Prefix+"*", o.Prefix+".apm-agent-configuration", o.Prefix+".kibana_apmtel_sample"); err != nil {
		return st, fmt.Errorf("sample: refresh: %w", err)
	}
	st.Duration = time.Since(start)
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "sample: %d documents in %s (%.0f docs/s), peak RSS %s\n", st.Docs, st.Duration.Round(time.Millisecond),
			float64(st.Docs)/st.Duration.Seconds(), peakRSS())
	}
	return st, nil
}

// loadExtras writes the onboarding document and agent configurations.
func loadExtras(ctx context.Context, d es.Doer, g *generator, o Options) error {
	acIndex := o.Prefix + ".apm-agent-configuration"
	if err := PutPlainIndex(ctx, d, acIndex); err != nil {
		return err
	}
	docs := []Doc{{Index: o.Prefix + "apm-onboarding-default", Source: map[string]any{
		"@timestamp": o.Now.Add(-time.Duration(o.Days) * 24 * time.Hour).UTC().Format(time.RFC3339Nano),
		"processor":  map[string]any{"event": "onboarding"}, "observer": map[string]any{"version": "8.15.0"},
	}}}
	for i, s := range g.services[:min(3, len(g.services))] {
		docs = append(docs, Doc{Index: acIndex, ID: fmt.Sprintf("sample-%d", i), Source: map[string]any{
			"service":          map[string]any{"name": s.name, "environment": s.env},
			"agent_name":       s.agent,
			"settings":         map[string]any{"transaction_sample_rate": "0.5", "capture_body": "errors"},
			"@timestamp":       o.Now.UnixMilli(),
			"applied_by_agent": i%2 == 0,
			"etag":             g.hex(40),
		}})
	}
	if err := Bulk(ctx, d, docs, false); err != nil {
		return fmt.Errorf("sample extras: %w", err)
	}
	return loadSavedObjects(ctx, d, o)
}

// loadSavedObjects writes Kibana saved objects for service groups, custom
// dashboards and the APM apps' behavioural telemetry (application usage,
// UI counters). Elasticsearch 8 may refuse writes to Kibana's system indices;
// that is reported, not fatal: the rest of the sample is still useful.
func loadSavedObjects(ctx context.Context, d es.Doer, o Options) error {
	index := o.Prefix + ".kibana_apmtel_sample"
	if err := PutPlainIndex(ctx, d, index); err != nil {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "sample: no saved objects (%v)\n", err)
		}
		return nil
	}
	kueries := []string{
		`service.environment: production and agent.name: java`,
		`service.name: svc-* or labels.team: a`,
		`not cloud.provider: aws`,
	}
	var docs []Doc
	for i, k := range kueries {
		docs = append(docs, Doc{Index: index, ID: fmt.Sprintf("apm-service-group:sample-%d", i), Source: map[string]any{
			"type": "apm-service-group", "namespaces": []string{"default"}, "updated_at": o.Now.UTC().Format(time.RFC3339),
			"apm-service-group": map[string]any{"groupName": fmt.Sprintf("sample group %d", i), "kuery": k, "color": "#5094C4"},
		}})
	}
	docs = append(docs, Doc{Index: index, ID: "apm-custom-dashboards:sample-0", Source: map[string]any{
		"type": "apm-custom-dashboards", "namespaces": []string{"default"}, "updated_at": o.Now.UTC().Format(time.RFC3339),
		"apm-custom-dashboards": map[string]any{"dashboardSavedObjectId": "sample", "kuery": "service.name: svc-java-0", "serviceEnvironmentFilterEnabled": true},
	}})
	docs = append(docs, behavioralObjects(index, o)...)
	if err := Bulk(ctx, d, docs, false); err != nil && o.Progress != nil {
		fmt.Fprintf(o.Progress, "sample: saved objects not written (%v)\n", err)
	}
	return nil
}

// peakRSS reads the process's peak resident set size (Linux), for the benchmark.
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			return strings.Join(strings.Fields(strings.TrimPrefix(line, "VmHWM:")), " ")
		}
	}
	return "unknown"
}
