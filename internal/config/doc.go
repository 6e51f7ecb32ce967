// Package config holds apmtel's configuration: a struct composed of parts
// (Redis, SourceCluster, Upload, Run, Worker, HTTP, Logging), each with its
// defaults and Validate in its own file, filled from APMTEL_* environment
// variables and then from command-line flags (flags win).
//
// Every option has exactly one environment variable and one typed flag
// (secrets: none), declared together in options.go with its kind and the
// group of commands that read it; defaults are stated once, in the parts'
// Default functions, and docs/configuration.md is held to them by
// TestConfigurationDocMatchesOptions.
package config
