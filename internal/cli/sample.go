package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/pflag"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/sample"
	"github.com/apmtel/apmtel/internal/telemetry"
	"github.com/apmtel/apmtel/internal/uploader"
)

// fromValues are where sample telemetry takes its telemetry object from.
var fromValues = []string{"snapshot", "collect", "auto"}

func sampleCommand() command {
	var o sample.Options
	t := sample.TelemetryOptions{}
	var clear bool
	var from string
	return command{name: "sample", summary: "sample data: `sample apm` (APM data, source cluster), `sample telemetry` (payloads, telemetry cluster)",
		subs: []command{
			{name: "apm", summary: "load sample APM data into the source cluster",
				groups: []string{gLogging, gSource},
				flags: func(fs *pflag.FlagSet) {
					fs.IntVar(&o.Services, "services", 6, "number of services")
					fs.IntVar(&o.Days, "days", 3, "days of data, ending now")
					fs.IntVar(&o.Docs, "docs", 5000, "number of documents")
					fs.Int64Var(&o.Seed, "seed", 1, "random seed (same seed, same data)")
					fs.IntVar(&o.Bulk, "bulk-size", 1000, "documents per bulk request")
					fs.IntVar(&o.Parallel, "parallel", 3, "bulk requests in flight")
					fs.StringVar(&o.Prefix, "prefix", "", "put before every index name, to keep this data apart on a shared cluster (point APMTEL_INDICES_* at it)")
				},
				run: func(e *env, _ []string) error { return runSampleAPM(e, o) }},
			{name: "telemetry", summary: "load sample telemetry documents (many simulated clusters) into the telemetry cluster",
				groups: []string{gRedis, gLogging, gHistory, gSource, gIndices, gTelemetry, gTask},
				flags: func(fs *pflag.FlagSet) {
					fs.IntVar(&t.Instances, "instances", 50, "simulated clusters")
					fs.IntVar(&t.Days, "days", 100, "days per cluster, ending today")
					fs.Int64Var(&t.Seed, "seed", 1, "random seed")
					fs.BoolVar(&clear, "clear", false, "delete the telemetry index first")
					fs.StringVar(&from, "from", "auto", "telemetry object to vary: snapshot (the latest in Redis), collect (run the tasks now), auto (snapshot, else collect)")
				},
				run: func(e *env, _ []string) error { return runSampleTelemetry(e, t, clear, from) }},
		}}
}

func runSampleAPM(e *env, o sample.Options) error {
	cfg := e.cfg
	for _, b := range []struct {
		flag string
		v    int
	}{{"services", o.Services}, {"days", o.Days}, {"docs", o.Docs}, {"bulk-size", o.Bulk}, {"parallel", o.Parallel}} {
		if b.v < 1 {
			return usageErrorf("--%s: %d is below 1", b.flag, b.v)
		}
	}
	l := newLogger(e, cfg)
	// The loader bounds its own bulk requests (--parallel).
	source, err := newGatedSource(cfg, l, nil)
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	o.Now = time.Now()
	o.Progress = e.stderr
	_, err = sample.Load(ctx, source, o)
	return err
}

func runSampleTelemetry(e *env, o sample.TelemetryOptions, clear bool, from string) error {
	cfg := e.cfg
	if !slices.Contains(fromValues, from) {
		return usageErrorf("--from: %q is not snapshot, collect or auto", from)
	}
	if !cfg.Telemetry.Configured() {
		return &config.UsageError{Err: errors.New("APMTEL_TELEMETRY_URL: the telemetry cluster is not configured")}
	}
	l := newLogger(e, cfg)
	ctx, stop := signalContext()
	defer stop()
	apm, err := baseTelemetry(ctx, e, cfg, from)
	if err != nil {
		return err
	}
	tc, err := es.NewClient(es.ClientParams{Cluster: cfg.Telemetry, CACertSetting: "APMTEL_TELEMETRY_CA_CERT"})
	if err != nil {
		return err
	}
	warnInsecure(l, "telemetry", cfg.Telemetry)
	if _, err := uploader.SetupIndex(ctx, tc, cfg.TelemetryIndex, "false", clear); err != nil {
		return err
	}
	o.Index, o.Now, o.Progress, o.Chunk = cfg.TelemetryIndex, time.Now(), e.stderr, 250
	n, err := sample.LoadTelemetry(ctx, tc, apm, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%d sample telemetry documents in %s\n", n, cfg.TelemetryIndex)
	return nil
}

// baseTelemetry returns the telemetry object the samples vary.
func baseTelemetry(ctx context.Context, e *env, cfg config.Config, from string) (map[string]any, error) {
	if from == "snapshot" || from == "auto" {
		snap, err := latestSnapshot(ctx, e, cfg)
		if err == nil {
			return decodeObject(snap)
		}
		if from == "snapshot" {
			if errors.Is(err, run.ErrNotFound) {
				return nil, errors.New("no snapshot in Redis yet: run `apmtel run --wait` or use --from collect")
			}
			return nil, err
		}
	}
	source, err := newSource(cfg, newLogger(e, cfg))
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(e.stderr, "sample telemetry: collecting once from the source cluster")
	all, _, _ := previewOnce(ctx, cfg, source, telemetry.Default().All(), 4)
	b, _ := json.Marshal(all.APM)
	return decodeObject(b)
}

// latestSnapshot reads the newest sealed full run's telemetry object.
func latestSnapshot(ctx context.Context, e *env, cfg config.Config) ([]byte, error) {
	rt, err := openRuntime(cfg, "sample")
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	st := newRuns(rt.rdb, cfg)
	id, _, err := st.Latest(ctx)
	if err != nil {
		return nil, err
	}
	b, err := st.Snapshot(ctx, id)
	if err == nil {
		fmt.Fprintf(e.stderr, "sample telemetry: varying the snapshot of run %s\n", id)
	}
	return b, err
}

func decodeObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("telemetry object: %w", err)
	}
	return m, nil
}
