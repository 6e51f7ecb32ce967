package systemtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/sample"
	"github.com/apmtel/apmtel/internal/testenv"
)

// fixtureService is one service of the fixture.
type fixtureService struct {
	name, agent, env, provider, region, zone, platform string
}

var fixtureServices = []fixtureService{
	{"opbeans-java", "java", "production", "aws", "us-east-1", "us-east-1a", "linux"},
	{"opbeans-node", "nodejs", "staging", "gcp", "europe-west1", "europe-west1-b", "linux"},
	{"opbeans-rum", "rum-js", "", "", "", "", "windows"},
}

// fixtureDoc is one APM document, described by what the tests count.
type fixtureDoc struct {
	index, event string
	ts           time.Time
	svc          fixtureService
	observer     string
}

// fixture is a small, fully known APM data set.
type fixture struct {
	now          time.Time
	docs         []fixtureDoc
	agentConfigs int
}

func newFixture(now time.Time) *fixture {
	f := &fixture{now: now, agentConfigs: 2}
	events := []string{"transaction", "span", "error", "metric"}
	for i := 0; i < 62; i++ {
		ev := events[i%4]
		svc := fixtureServices[i%3]
		d := fixtureDoc{event: ev, svc: svc, ts: now.Add(-time.Duration(i) * 47 * time.Minute), observer: "8.15.0"}
		switch ev {
		case "transaction", "span":
			d.index = "traces-apm-default"
		case "error":
			d.index = "logs-apm.error-default"
		case "metric":
			d.index = "metrics-apm.app." + svc.name + "-default"
		}
		switch i {
		case 0:
			d.observer = "8.16.1" // the newest document
		case 40:
			d.observer = "9.0.0" // a higher version on an older document
		}
		f.docs = append(f.docs, d)
	}
	f.docs = append(f.docs, fixtureDoc{index: "apm-onboarding-default", event: "onboarding", ts: now.Add(-72 * time.Hour), observer: "8.15.0"})
	return f
}

func (d fixtureDoc) source() map[string]any {
	src := map[string]any{
		"@timestamp": d.ts.UTC().Format(time.RFC3339Nano),
		"processor":  map[string]any{"event": d.event},
		"observer":   map[string]any{"version": d.observer},
	}
	if d.svc.name == "" {
		return src
	}
	svc := map[string]any{"name": d.svc.name}
	if d.svc.env != "" {
		svc["environment"] = d.svc.env
	}
	src["service"] = svc
	src["agent"] = map[string]any{"name": d.svc.agent}
	src["host"] = map[string]any{"os": map[string]any{"platform": d.svc.platform}}
	if d.svc.provider != "" {
		src["cloud"] = map[string]any{"provider": d.svc.provider, "region": d.svc.region, "availability_zone": d.svc.zone}
	}
	return src
}

// load writes the fixture into the cluster under index prefix p. A loaded
// engine can time out a dynamic mapping update (mapper_exception) and fail
// some documents: then everything under p is cleared and loaded again.
func (f *fixture) load(t *testing.T, c *es.Client, p string) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		err := f.loadOnce(c, p)
		if err == nil {
			return
		}
		if attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("fixture load, attempt %d: %v; clearing %s* and loading again", attempt, err, p)
		testenv.ClearPrefix(c, p)
	}
}

func (f *fixture) loadOnce(c *es.Client, p string) error {
	ctx := context.Background()
	if err := sample.PutTemplates(ctx, c, p); err != nil {
		return err
	}
	var docs []sample.Doc
	for _, d := range f.docs {
		docs = append(docs, sample.Doc{Index: p + d.index, Source: d.source()})
	}
	if err := sample.PutPlainIndex(ctx, c, p+".apm-agent-configuration"); err != nil {
		return err
	}
	for i := 0; i < f.agentConfigs; i++ {
		docs = append(docs, sample.Doc{Index: p + ".apm-agent-configuration", ID: fmt.Sprint("cfg-", i), Source: map[string]any{
			"service": map[string]any{"name": fixtureServices[i].name}, "agent_name": fixtureServices[i].agent,
			"settings": map[string]any{"transaction_sample_rate": "0.5"},
		}})
	}
	if err := sample.Bulk(ctx, c, docs, true); err != nil {
		return err
	}
	return sample.Refresh(ctx, c, p+"traces-apm*", p+"logs-apm*", p+"metrics-apm*", p+"apm-*", p+".apm-agent-configuration")
}

// expectedCounts computes counts.<event>.{1d,all} from the fixture.
func (f *fixture) expectedCounts() map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for _, ev := range []string{"error", "metric", "span", "transaction", "onboarding"} {
		out[ev] = map[string]int64{"1d": 0, "all": 0}
	}
	for _, d := range f.docs {
		out[d.event]["all"]++
		if f.now.Sub(d.ts) < 24*time.Hour {
			out[d.event]["1d"]++
		}
	}
	return out
}

// oldest returns the oldest timestamp per event.
func (f *fixture) oldest() map[string]time.Time {
	out := map[string]time.Time{}
	for _, d := range f.docs {
		if o, ok := out[d.event]; !ok || d.ts.Before(o) {
			out[d.event] = d.ts
		}
	}
	return out
}

// topTerms returns the values of field over all documents, most frequent
// first and then by key, as a terms aggregation orders them.
func (f *fixture) topTerms(field func(fixtureDoc) string) []string {
	values := make([]string, len(f.docs))
	for i, d := range f.docs {
		values[i] = field(d)
	}
	return testenv.TopTerms(values)
}

// newestObserver is the observer.version of the newest document.
func (f *fixture) newestObserver() string {
	best := f.docs[0]
	for _, d := range f.docs {
		if d.ts.After(best.ts) {
			best = d
		}
	}
	return best.observer
}
