package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/apmtel/apmtel/internal/boundedfile"
	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/schema"
)

const defaultSchemaFile = "schema/apm.json"

func runSchema(e *env, args []string) error {
	if helpRequested(e, args, "apmtel schema mapping | check [--fix] [--file F] | es-mapping [--dynamic D] | paths") {
		return flag.ErrHelp
	}
	if len(args) == 0 {
		return &config.UsageError{Err: errors.New("usage: apmtel schema mapping | check [--fix] [--file F] | es-mapping [--dynamic D] | paths")}
	}
	fs := flag.NewFlagSet("apmtel schema "+args[0], flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	file := fs.String("file", defaultSchemaFile, "the committed telemetry-schema file")
	fix := fs.Bool("fix", false, "rewrite the file when it differs")
	dynamic := fs.String("dynamic", "strict", "dynamic setting of the index mapping (true, false, strict)")
	if err := e.parse(fs, args[1:]); err != nil {
		return &config.UsageError{Err: err}
	}
	switch args[0] {
	case "mapping":
		_, err := e.stdout.Write(schema.Mapping())
		return err
	case "es-mapping":
		_, err := e.stdout.Write(schema.ESIndex(*dynamic))
		return err
	case "paths":
		for _, p := range schema.Paths() {
			fmt.Fprintln(e.stdout, p)
		}
		return nil
	case "check":
		want := schema.Mapping()
		got, err := boundedfile.Read(*file)
		if err != nil && !(errors.Is(err, os.ErrNotExist) && *fix) {
			return err
		}
		if bytes.Equal(want, got) {
			fmt.Fprintf(e.stdout, "%s is up to date\n", *file)
			return nil
		}
		if *fix {
			if err := os.WriteFile(*file, want, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s rewritten\n", *file)
			return nil
		}
		diffs, err := schema.Diff(want, got)
		if err != nil {
			return err
		}
		if len(diffs) == 0 {
			diffs = []string{"formatting differs"}
		}
		for _, d := range diffs {
			fmt.Fprintln(e.stderr, d)
		}
		return &exitError{code: 1, err: fmt.Errorf("%s must be regenerated: run `apmtel schema check --fix` (%d differences)", *file, len(diffs))}
	}
	return &config.UsageError{Err: fmt.Errorf("unknown schema command %q", args[0])}
}

func runTelemetryIndex(e *env, args []string) error {
	if helpRequested(e, args, "apmtel telemetry-index setup [--clear] [--dynamic true|false|strict]") {
		return flag.ErrHelp
	}
	if len(args) == 0 || args[0] != "setup" {
		return &config.UsageError{Err: errors.New("usage: apmtel telemetry-index setup [--clear] [--dynamic true|false|strict]")}
	}
	var clear bool
	var dynamic string
	cfg, _, err := load(e, "telemetry-index setup", "[--clear] [--dynamic D]", args[1:], func(fs *flag.FlagSet) {
		fs.BoolVar(&clear, "clear", false, "delete the index first")
		fs.StringVar(&dynamic, "dynamic", "false", "mapping's dynamic setting: false keeps unmapped fields in _source without indexing them; strict rejects them")
	})
	if err != nil {
		return err
	}
	switch dynamic {
	case "true", "false", "strict":
	default:
		return &config.UsageError{Err: fmt.Errorf("--dynamic: %q is not true, false or strict", dynamic)}
	}
	if !cfg.Telemetry.Configured() {
		return &config.UsageError{Err: errors.New("APMTEL_TELEMETRY_URL: the telemetry cluster is not configured")}
	}
	l := newLogger(e, cfg)
	warnInsecure(l, "telemetry", cfg.Telemetry)
	c, err := es.NewClient(es.ClientParams{Cluster: cfg.Telemetry})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	what, err := SetupTelemetryIndex(ctx, c, cfg.TelemetryIndex, dynamic, clear)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: %s\n", cfg.TelemetryIndex, what)
	return nil
}

// SetupTelemetryIndex creates the telemetry index with the schema's mapping,
// or updates an existing one as Kibana's script does: close, put the
// mapping and the changeable settings, open.
func SetupTelemetryIndex(ctx context.Context, c es.Doer, index, dynamic string, clear bool) (string, error) {
	t := time.Minute
	ix := []string{index}
	if clear {
		if _, err := c.Do(ctx, es.Request{Method: "DELETE", Index: ix, Timeout: t}); err != nil && !es.IsNotFound(err) {
			return "", fmt.Errorf("delete %s: %w", index, err)
		}
	}
	body := schema.ESIndex(dynamic)
	_, err := c.Do(ctx, es.Request{Method: "PUT", Index: ix, Body: rawJSON(body), Timeout: t})
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
