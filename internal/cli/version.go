package cli

import (
	"encoding/json"

	"github.com/spf13/pflag"

	"github.com/apmtel/apmtel/internal/version"
)

func versionCommand() command {
	var asJSON bool
	return command{name: "version", summary: "print version, commit, build date and Go version",
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print the build information as one JSON document")
		},
		run: func(e *env, _ []string) error {
			in := version.Get()
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(in)
			}
			_, err := e.stdout.Write([]byte(in.String() + "\n"))
			return err
		}}
}
