package cli

import (
	"errors"
	"flag"
	"time"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/sample"
)

func runSample(e *env, args []string) error {
	if len(args) == 0 || args[0] != "apm" {
		return &config.UsageError{Err: errors.New("usage: apmtel sample apm [--services N] [--days D] [--docs N] [--seed N]")}
	}
	var o sample.Options
	cfg, _, err := load(e, "sample apm", "[--services N] [--days D] [--docs N] [--seed N]", args[1:], func(fs *flag.FlagSet) {
		fs.IntVar(&o.Services, "services", 6, "number of services")
		fs.IntVar(&o.Days, "days", 3, "days of data, ending now")
		fs.IntVar(&o.Docs, "docs", 5000, "number of documents")
		fs.Int64Var(&o.Seed, "seed", 1, "random seed (same seed, same data)")
		fs.IntVar(&o.Bulk, "bulk-size", 1000, "documents per bulk request")
	})
	if err != nil {
		return err
	}
	l := newLogger(e, cfg)
	source, err := newSource(cfg, l)
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
