package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/spf13/pflag"

	"github.com/apmtel/apmtel/internal/boundedfile"
	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/schema"
	"github.com/apmtel/apmtel/internal/uploader"
)

const defaultSchemaFile = "schema/apm.json"

// dynamicValues are the mapping's dynamic settings.
var dynamicValues = []string{"true", "false", "strict"}

func schemaCommand() command {
	var file, dynamic string
	var fix bool
	return command{name: "schema", summary: "the payload schema: mapping, check [--fix], es-mapping, paths",
		subs: []command{
			{name: "mapping", summary: "print the telemetry schema (Kibana's collector schema form)",
				run: func(e *env, _ []string) error { _, err := e.stdout.Write(schema.Mapping()); return err }},
			{name: "check", summary: "check the committed schema file against the code",
				flags: func(fs *pflag.FlagSet) {
					fs.BoolVar(&fix, "fix", false, "rewrite the file when it differs")
					fs.StringVar(&file, "file", defaultSchemaFile, "the committed telemetry-schema file")
				},
				run: func(e *env, _ []string) error { return schemaCheck(e, file, fix) }},
			{name: "es-mapping", summary: "print the telemetry index's settings and mapping",
				flags: func(fs *pflag.FlagSet) {
					fs.StringVar(&dynamic, "dynamic", "strict", "dynamic setting of the index mapping (true, false, strict)")
				},
				run: func(e *env, _ []string) error {
					if !slices.Contains(dynamicValues, dynamic) {
						return usageErrorf("--dynamic: %q is not true, false or strict", dynamic)
					}
					_, err := e.stdout.Write(schema.ESIndex(dynamic))
					return err
				}},
			{name: "paths", summary: "print every leaf path of the schema",
				run: func(e *env, _ []string) error {
					for _, p := range schema.Paths() {
						fmt.Fprintln(e.stdout, p)
					}
					return nil
				}},
		}}
}

func schemaCheck(e *env, file string, fix bool) error {
	want := schema.Mapping()
	got, err := boundedfile.Read(file)
	if err != nil && !(errors.Is(err, os.ErrNotExist) && fix) {
		return err
	}
	if bytes.Equal(want, got) {
		fmt.Fprintf(e.stdout, "%s is up to date\n", file)
		return nil
	}
	if fix {
		if err := os.WriteFile(file, want, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s rewritten\n", file)
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
	return &exitError{code: 1, err: fmt.Errorf("%s must be regenerated: run `apmtel schema check --fix` (%d differences)", file, len(diffs))}
}

func telemetryIndexCommand() command {
	var clear bool
	var dynamic string
	return command{name: "telemetry-index", summary: "create or update the telemetry index with the schema's mapping",
		subs: []command{{name: "setup", summary: "create the telemetry index, or update its mapping and settings",
			groups: []string{gLogging, gTelemetry},
			flags: func(fs *pflag.FlagSet) {
				fs.BoolVar(&clear, "clear", false, "delete the index first")
				fs.StringVar(&dynamic, "dynamic", "false", "mapping's dynamic setting: false keeps unmapped fields in _source without indexing them; strict rejects them")
			},
			run: func(e *env, _ []string) error { return runTelemetryIndexSetup(e, clear, dynamic) }}}}
}

func runTelemetryIndexSetup(e *env, clear bool, dynamic string) error {
	cfg := e.cfg
	if !slices.Contains(dynamicValues, dynamic) {
		return usageErrorf("--dynamic: %q is not true, false or strict", dynamic)
	}
	if !cfg.Telemetry.Configured() {
		return &config.UsageError{Err: errors.New("APMTEL_TELEMETRY_URL: the telemetry cluster is not configured")}
	}
	l := newLogger(e, cfg)
	warnInsecure(l, "telemetry", cfg.Telemetry)
	c, err := es.NewClient(es.ClientParams{Cluster: cfg.Telemetry, CACertSetting: "APMTEL_TELEMETRY_CA_CERT"})
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
