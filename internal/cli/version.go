package cli

import (
	"encoding/json"
	"flag"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/version"
)

func runVersion(e *env, args []string) error {
	fs := flag.NewFlagSet("apmtel version", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	asJSON := fs.Bool("json", false, "print the build information as JSON")
	if err := e.parse(fs, args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return &config.UsageError{Err: err}
	}
	in := version.Get()
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(in)
	}
	_, err := e.stdout.Write([]byte(in.String() + "\n"))
	return err
}
