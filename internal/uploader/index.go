package uploader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/schema"
)

// SetupIndex creates the telemetry index (the ES sink's target) with the
// schema's mapping, or updates an existing one as Kibana's script does:
// close, put the mapping and the changeable settings, open. It says which
// it did.
func SetupIndex(ctx context.Context, c es.Doer, index, dynamic string, clear bool) (string, error) {
	t := time.Minute
	ix := []string{index}
	if clear {
		if _, err := c.Do(ctx, es.Request{Method: "DELETE", Index: ix, Timeout: t}); err != nil && !es.IsNotFound(err) {
			return "", fmt.Errorf("delete %s: %w", index, err)
		}
	}
	body := schema.ESIndex(dynamic)
	_, err := c.Do(ctx, es.Request{Method: "PUT", Index: ix, Body: json.RawMessage(body), Timeout: t})
	if err == nil {
		return "created", nil
	}
	var ee *es.Error
	if !errors.As(err, &ee) || !strings.Contains(ee.Type, "already_exists") {
		return "", fmt.Errorf("create %s: %w", index, err)
	}
	var parsed struct {
		Settings map[string]any `json:"settings"`
		Mappings map[string]any `json:"mappings"`
	}
	if err := json.Unmarshal(body, &parsed); err != nil {
		return "", err
	}
	steps := []es.Request{
		{Method: "POST", Index: ix, Endpoint: "_close", Timeout: t},
		{Method: "PUT", Index: ix, Endpoint: "_mapping", Body: parsed.Mappings, Timeout: t},
		{Method: "PUT", Index: ix, Endpoint: "_settings", Body: parsed.Settings, Timeout: t},
		{Method: "POST", Index: ix, Endpoint: "_open", Params: url.Values{"wait_for_active_shards": {"1"}}, Timeout: t},
	}
	for _, r := range steps {
		if _, err := c.Do(ctx, r); err != nil {
			// Never leave the index closed behind an error.
			_, _ = c.Do(context.WithoutCancel(ctx), es.Request{Method: "POST", Index: ix, Endpoint: "_open", Timeout: t})
			return "", fmt.Errorf("update %s: %s: %w", index, r.Endpoint, err)
		}
	}
	return "mapping and settings updated", nil
}
