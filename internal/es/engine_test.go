package es_test

import (
	"context"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/testenv"
)

// The client against each test engine: the product check passes (the
// Elasticsearch node sends X-Elastic-Product itself, OpenSearch through the
// proxy), GET / decodes, and an engine's error is parsed into its status,
// type and reason and classed as permanent.
func TestClientAgainstEngines(t *testing.T) {
	testenv.Engines(t, func(t *testing.T, engine testenv.Engine) {
		c := engine.Client(t)
		p := testenv.Prefix(t, c)
		ctx := context.Background()
		info, err := es.Info(ctx, c, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{testenv.OpenSearch: `^2\.19\.`, testenv.Elasticsearch: `^8\.19\.21$`}[engine.Name]
		if !regexp.MustCompile(want).MatchString(info.Version.Number) || info.ClusterUUID == "" || info.ClusterName == "" {
			t.Errorf("info %+v", info)
		}

		// A task's search on a missing index reads as no data ...
		if _, err := c.Do(ctx, es.Search([]string{p + "missing"}, map[string]any{"size": 0}, 10*time.Second)); err != nil {
			t.Errorf("search on a missing index: %v", err)
		}
		// ... any other request on it is a permanent 404.
		_, err = c.Do(ctx, es.Request{Method: "GET", Index: []string{p + "missing"}, Endpoint: "_count", Timeout: 10 * time.Second})
		var e *es.Error
		if !errors.As(err, &e) || e.Status != 404 || e.Type != "index_not_found_exception" || !es.IsNotFound(err) || !es.IsPermanent(err) {
			t.Errorf("count on a missing index: %#v", err)
		}

		_, err = c.Do(ctx, es.Search([]string{p + "*"}, map[string]any{"query": map[string]any{"nosuch": map[string]any{}}}, 10*time.Second))
		if !errors.As(err, &e) || e.Status != 400 || e.Type != "parsing_exception" || !es.IsPermanent(err) {
			t.Errorf("unknown query: %#v", err)
		}
	})
}
