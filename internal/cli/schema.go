package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/schema"
	"github.com/apmtel/apmtel/internal/uploader"
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
		got, err := os.ReadFile(*file)
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
	what, err := uploader.SetupIndex(ctx, c, cfg.TelemetryIndex, dynamic, clear)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: %s\n", cfg.TelemetryIndex, what)
	return nil
}
