// Package cli implements the apmtel command: one binary whose subcommands
// are the scheduler, the worker, the monitor, manual control and tooling.
// cmd/apmtel only calls Main, so the whole command is testable in-process.
package cli
