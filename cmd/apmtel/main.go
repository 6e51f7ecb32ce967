// Command apmtel collects Elastic APM data telemetry with distributed
// job-queue workers. See README.md.
package main

import (
	"os"

	"github.com/apmtel/apmtel/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}
