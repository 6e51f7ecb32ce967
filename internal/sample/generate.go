package sample

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
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
	// Parallel is the number of bulk requests in flight (default 3: one
	// being parsed per engine core and one on the wire).
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
	// Setup is the part of Duration spent creating the data streams: a
	// fixed cost per stream (a cluster-state update, ~0.3–0.5 s each on the
	// local one-node OpenSearch), paid once, not per document.
	Setup time.Duration
}

type service struct {
	name, env, agent, agentVersion, activation string
	lang, langVersion, framework, fwVersion    string
	runtime, rtVersion                         string
	host, platform, provider, region, zone     string
	container, pod                             string
}

// agentProfile is what one kind of agent reports about itself: each value
// list holds what that agent really sends (Java's activation methods are
// not .NET's), so the first telemetry object a newcomer sees reads right.
type agentProfile struct {
	agent    string
	versions []string
	// activations are agent.activation_method values; none: the agent
	// does not report one (Go, RUM, OpenTelemetry).
	activations []string
	lang        string
	// langVersions and runtime/rtVersions: the language and runtime the
	// agent runs on (RUM: none).
	langVersions []string
	runtime      string
	rtVersions   []string
	// frameworks are name/version pairs; none: no framework (RUM, OTel).
	frameworks [][2]string
}

var agentProfiles = []agentProfile{
	{"java", []string{"1.45.0", "1.50.0"}, []string{"javaagent-flag", "apm-agent-attach-cli", "k8s-attach"},
		"Java", []string{"17.0.9", "21.0.2"}, "Java", []string{"17.0.9", "21.0.2"},
		[][2]string{{"Spring Web MVC", "6.1"}, {"JAX-RS", "3.1"}, {"Servlet API", "6.0"}}},
	{"nodejs", []string{"4.4.1", "4.5.0"}, []string{"require", "import", "preload"},
		"javascript", []string{"ES2022"}, "node", []string{"20.11.1", "22.2.0"},
		[][2]string{{"express", "4.19.2"}, {"fastify", "4.26.2"}, {"koa", "2.15.3"}}},
	{"python", []string{"6.21.3", "6.22.0"}, []string{"wrapper", "k8s-attach", "aws-lambda-layer"},
		"python", []string{"3.11.8", "3.12.2"}, "CPython", []string{"3.11.8", "3.12.2"},
		[][2]string{{"django", "5.0.3"}, {"flask", "3.0.2"}, {"starlette", "0.37.2"}}},
	{"go", []string{"2.4.1", "2.5.0"}, nil,
		"go", []string{"go1.22.1"}, "gc", []string{"go1.22.1"},
		[][2]string{{"gin", "v1.9.1"}, {"echo", "v4.11.4"}, {"net/http", ""}}},
	{"ruby", []string{"4.7.0", "4.7.3"}, []string{"require", "k8s-attach"},
		"ruby", []string{"3.2.3", "3.3.0"}, "ruby", []string{"3.2.3", "3.3.0"},
		[][2]string{{"Ruby on Rails", "7.1.3"}, {"Sinatra", "4.0.0"}}},
	{"dotnet", []string{"1.25.3", "1.26.0"}, []string{"profiler", "nuget", "startup-hook"},
		"C#", []string{"12.0"}, ".NET", []string{"8.0.2", "6.0.27"},
		[][2]string{{"ASP.NET Core", "8.0.2"}, {"gRPC", "2.61.0"}}},
	{"rum-js", []string{"5.16.0", "5.16.1"}, nil, "javascript", nil, "", nil, nil},
	{"opentelemetry/java", []string{"1.32.0"}, nil, "java", []string{"17.0.9"}, "OpenJDK Runtime Environment", []string{"17.0.9+9"}, nil},
	{"otlp/python", []string{"1.20.0"}, nil, "python", []string{"3.12.2"}, "CPython", []string{"3.12.2"}, nil},
}

func newServices(r *rand.Rand, n int) []service {
	envs := []string{"production", "staging", ""}
	clouds := []struct{ provider, region string }{{"aws", "us-east-1"}, {"gcp", "europe-west1"}, {"azure", "westeurope"}}
	pick := func(vals []string) string {
		if len(vals) == 0 {
			return ""
		}
		return vals[r.IntN(len(vals))]
	}
	out := make([]service, n)
	for i := range out {
		p := agentProfiles[i%len(agentProfiles)]
		c := clouds[r.IntN(len(clouds))]
		s := service{
			name: fmt.Sprintf("svc-%s-%d", shortName(p.agent), i), env: envs[r.IntN(len(envs))],
			agent: p.agent, agentVersion: pick(p.versions), activation: pick(p.activations),
			lang: p.lang, langVersion: pick(p.langVersions), runtime: p.runtime, rtVersion: pick(p.rtVersions),
			host: fmt.Sprintf("host-%d", r.IntN(1000)), platform: []string{"linux", "linux", "windows", "darwin"}[r.IntN(4)],
			provider: c.provider, region: c.region, zone: c.region + string(rune('a'+r.IntN(3))),
			container: fmt.Sprintf("%012x", r.Uint64()&0xffffffffffff), pod: fmt.Sprintf("pod-%d", r.IntN(100)),
		}
		if len(p.frameworks) > 0 {
			fw := p.frameworks[r.IntN(len(p.frameworks))]
			s.framework, s.fwVersion = fw[0], fw[1]
		}
		out[i] = s
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

func (g *generator) hex(n int) string { return string(g.appendHex(nil, n)) }

// appendHex appends n random lowercase hex digits.
func (g *generator) appendHex(b []byte, n int) []byte {
	for range n {
		b = append(b, hexDigits[g.r.IntN(16)])
	}
	return b
}

// hexMember writes k: n random hex digits.
func (g *generator) hexMember(w *jw, k string, n int) {
	w.key(k)
	w.b = append(w.b, '"')
	w.b = g.appendHex(w.b, n)
	w.b = append(w.b, '"')
}

// appendDoc appends document i's source (one JSON object) to b and returns
// the index it belongs in. The random draws come in a fixed order, so a seed
// gives the same documents every time.
func (g *generator) appendDoc(b []byte, i int) (index string, _ []byte) {
	s := &g.services[g.r.IntN(len(g.services))]
	age := time.Duration(g.r.Int64N(int64(time.Duration(g.o.Days) * 24 * time.Hour)))
	ts := g.o.Now.Add(-age).UTC()
	team := [...]string{"a", "b", "c"}[g.r.IntN(3)]

	w := jw{b: b}
	w.open()
	w.time("@timestamp", ts)
	w.obj("agent")
	w.str("name", s.agent)
	w.str("version", s.agentVersion)
	if s.activation != "" {
		w.str("activation_method", s.activation)
	}
	w.close()
	w.obj("service")
	w.str("name", s.name)
	w.key("version")
	w.b = append(w.b, `"1.0.`...)
	w.b = strconv.AppendInt(w.b, int64(i%3), 10)
	w.b = append(w.b, '"')
	w.obj("node")
	w.str("name", s.host)
	w.close()
	w.obj("language")
	w.str("name", s.lang)
	if s.langVersion != "" {
		w.str("version", s.langVersion)
	}
	w.close()
	if s.env != "" {
		w.str("environment", s.env)
	}
	if s.framework != "" {
		w.obj("framework")
		w.str("name", s.framework)
		if s.fwVersion != "" {
			w.str("version", s.fwVersion)
		}
		w.close()
	}
	if s.runtime != "" {
		w.obj("runtime")
		w.str("name", s.runtime)
		w.str("version", s.rtVersion)
		w.close()
	}
	w.close()
	w.obj("host")
	w.str("name", s.host)
	w.obj("os")
	w.str("platform", s.platform)
	w.close()
	w.close()
	w.obj("cloud")
	w.str("provider", s.provider)
	w.str("region", s.region)
	w.str("availability_zone", s.zone)
	w.close()
	w.obj("observer")
	w.key("version")
	w.b = append(w.b, `"8.15.`...)
	w.b = strconv.AppendInt(w.b, int64(i%2), 10)
	w.b = append(w.b, '"')
	w.str("hostname", "apm-server-1")
	w.close()
	w.obj("container")
	w.str("id", s.container)
	w.close()
	w.obj("kubernetes")
	w.obj("pod")
	w.str("name", s.pod)
	w.close()
	w.close()
	w.obj("labels")
	w.str("team", team)
	w.close()

	p := g.o.Prefix
	switch k := g.r.IntN(100); {
	case k < 40:
		if g.r.IntN(3) == 0 || g.traceID == "" {
			g.traceID, g.rootID = g.hex(32), g.hex(16)
		} else {
			w.obj("parent")
			w.str("id", g.rootID)
			w.close()
		}
		w.obj("trace")
		w.str("id", g.traceID)
		w.close()
		w.obj("processor")
		w.str("event", "transaction")
		w.close()
		typ := "request"
		if s.agent == "rum-js" {
			typ = "page-load"
			w.obj("user_agent")
			w.str("name", "Chrome")
			w.key("original")
			w.b = append(w.b, `"Mozilla/5.0 Chrome/`...)
			w.b = strconv.AppendInt(w.b, int64(100+g.r.IntN(20)), 10)
			w.b = append(w.b, '"')
			w.close()
			w.obj("client")
			w.obj("geo")
			w.str("country_iso_code", [...]string{"US", "DE", "FR", "JP"}[g.r.IntN(4)])
			w.close()
			w.close()
		}
		w.obj("transaction")
		w.key("name")
		w.b = append(w.b, `"GET /api/`...)
		w.b = strconv.AppendInt(w.b, int64(g.r.IntN(20)), 10)
		w.b = append(w.b, '"')
		w.str("type", typ)
		w.str("result", "HTTP 2xx")
		g.hexMember(&w, "id", 16)
		w.close()
		index = p + "traces-apm-default"
	case k < 75:
		w.obj("processor")
		w.str("event", "span")
		w.close()
		w.obj("trace")
		w.str("id", g.traceID)
		w.close()
		w.obj("parent")
		w.str("id", g.rootID)
		w.close()
		w.obj("span")
		w.obj("destination")
		w.obj("service")
		w.str("resource", [...]string{"postgresql", "redis", "elasticsearch", "kafka/orders"}[g.r.IntN(4)])
		w.close()
		w.close()
		w.close()
		index = p + "traces-apm-default"
	case k < 80:
		w.obj("processor")
		w.str("event", "error")
		w.close()
		w.obj("error")
		// Eight digits drawn, two kept: few distinct groups, as in real data.
		key := g.appendHex(nil, 8)
		w.str("grouping_key", string(key[:2]))
		w.close()
		w.obj("trace")
		w.str("id", g.traceID)
		w.close()
		index = p + "logs-apm.error-default"
	case k < 90:
		w.obj("processor")
		w.str("event", "metric")
		w.close()
		w.obj("metricset")
		w.str("name", "app")
		w.close()
		index = p + "metrics-apm.app." + s.name + "-default"
	default:
		w.obj("processor")
		w.str("event", "metric")
		w.close()
		ms := [...]string{"transaction", "service_transaction", "service_summary", "service_destination", "span_breakdown"}[g.r.IntN(5)]
		iv := [...]string{"1m", "10m", "60m"}[g.r.IntN(3)]
		w.obj("metricset")
		w.str("name", ms)
		w.str("interval", iv)
		w.close()
		if ms == "span_breakdown" {
			index = p + "metrics-apm.internal-default"
		} else {
			index = p + "metrics-apm." + ms + "." + iv + "-default"
		}
	}
	w.close()
	return index, w.b
}

// Load generates o.Docs documents and bulk-indexes them, o.Parallel requests
// in flight. Documents are written straight into reused bulk bodies, so
// memory holds at most Parallel+1 bodies whatever the number of documents.
func Load(ctx context.Context, d es.Doer, o Options) (Stats, error) {
	if o.Services < 1 || o.Days < 1 || o.Docs < 0 {
		return Stats{}, fmt.Errorf("sample: services and days must be at least 1, docs not negative")
	}
	if o.Bulk <= 0 {
		o.Bulk = 1000
	}
	if o.Parallel <= 0 {
		o.Parallel = 3
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
	streams := dataStreams(o.Prefix, g.services)
	if err := createStreams(ctx, d, streams); err != nil {
		return st, fmt.Errorf("sample: %w", err)
	}
	st.Setup = time.Since(start)

	type chunk struct {
		body []byte
		n    int
	}
	chunks := make(chan chunk)
	free := make(chan []byte, o.Parallel+1)
	errc := make(chan error, o.Parallel)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for w := 0; w < o.Parallel; w++ {
		go func() {
			for c := range chunks {
				if err := BulkNDJSON(ctx, d, c.body, c.n, false); err != nil {
					errc <- err
					cancel()
					for range chunks {
					}
					return
				}
				select {
				case free <- c.body[:0]:
				default:
				}
			}
			errc <- nil
		}()
	}
	var genErr error
	var scratch []byte
	for i := 0; i < o.Docs; i += o.Bulk {
		n := min(o.Bulk, o.Docs-i)
		var body []byte
		select {
		case body = <-free:
		default:
		}
		for j := range n {
			// The action line names the index, known once the document is drawn.
			var index string
			index, scratch = g.appendDoc(scratch[:0], i+j)
			body = appendAction(body, index, "")
			body = append(append(body, scratch...), '\n')
			st.ByIndex[index]++
		}
		select {
		case chunks <- chunk{body, n}:
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
		fmt.Fprintf(o.Progress, "sample: %d documents in %s (%.0f docs/s; %.0f docs/s after %s creating %d data streams), loader CPU %s, peak RSS %s\n",
			st.Docs, st.Duration.Round(time.Millisecond), float64(st.Docs)/st.Duration.Seconds(),
			float64(st.Docs)/(st.Duration-st.Setup).Seconds(), st.Setup.Round(time.Millisecond), len(streams),
			cpuTime(), peakRSS())
	}
	return st, nil
}

// dataStreams are the data streams the generator writes to (appendDoc).
func dataStreams(prefix string, services []service) []string {
	out := []string{prefix + "traces-apm-default", prefix + "logs-apm.error-default", prefix + "metrics-apm.internal-default",
		prefix + "apm-onboarding-default"}
	for _, ms := range []string{"transaction", "service_transaction", "service_summary", "service_destination"} {
		for _, iv := range []string{"1m", "10m", "60m"} {
			out = append(out, prefix+"metrics-apm."+ms+"."+iv+"-default")
		}
	}
	for _, s := range services {
		out = append(out, prefix+"metrics-apm.app."+s.name+"-default")
	}
	return out
}

// createStreams creates the data streams up front, several at once:
// created by the first document instead, each would stall a bulk request
// for a cluster-state update, one after another.
func createStreams(ctx context.Context, d es.Doer, names []string) error {
	sem := make(chan struct{}, 8)
	errs := make(chan error, len(names))
	for _, name := range names {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			_, err := d.Do(ctx, es.Request{Method: "PUT", Endpoint: "_data_stream/" + name, ClusterWide: true, Timeout: time.Minute})
			var e *es.Error
			if err != nil && !(asES(err, &e) && e.Type == "resource_already_exists_exception") {
				errs <- fmt.Errorf("create data stream %s: %w", name, err)
				return
			}
			errs <- nil
		}()
	}
	var first error
	failed := 0
	for range names {
		if err := <-errs; err != nil {
			if first == nil {
				first = err
			}
			failed++
		}
	}
	if failed > 1 {
		return fmt.Errorf("%d of %d data streams not created; first: %w", failed, len(names), first)
	}
	return first
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

// cpuTime reads the process's user+system CPU time (Linux), for the
// benchmark: what the loader takes from the engine on a shared machine.
func cpuTime() string {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return "unknown"
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return "unknown"
	}
	ut, err1 := strconv.Atoi(f[11])
	st, err2 := strconv.Atoi(f[12])
	if err1 != nil || err2 != nil {
		return "unknown"
	}
	return (time.Duration(ut+st) * time.Second / 100).String() // USER_HZ is 100 on Linux
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
