package cli

import (
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/telemetry"
)

// Shell completion is cobra's: subcommands, flags (with their help as the
// description) and, registered here, the values of the flags that take one
// of a few and the task names of run and preview.

// flagValues are the values of the flags that take one of a few. The log
// options' are the ones config.Validate accepts; the task flags take task
// names.
func flagValues(name string) []string {
	switch name {
	case "task":
		return telemetry.Default().Names()
	case "log-level":
		return config.LogLevels
	case "log-format":
		return config.LogFormats
	case "dynamic":
		return dynamicValues
	case "from":
		return fromValues
	}
	return nil
}

// registerValueCompletions completes the values of cmd's flags that have a
// list; the others (a path, an address, a number) get the shell's files.
func registerValueCompletions(cmd *cobra.Command) {
	for _, name := range []string{"task", "log-level", "log-format", "dynamic", "from"} {
		if cmd.Flags().Lookup(name) == nil {
			continue
		}
		vals := flagValues(name)
		_ = cmd.RegisterFlagCompletionFunc(name, func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			return matching(vals, toComplete), cobra.ShellCompDirectiveNoFileComp
		})
	}
}

// completeTasks completes task names not given yet.
func completeTasks(_ *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	var out []string
	for _, t := range matching(telemetry.Default().Names(), toComplete) {
		if !slices.Contains(args, t) {
			out = append(out, t)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

func matching(vals []string, prefix string) []string {
	var out []string
	for _, v := range vals {
		if strings.HasPrefix(v, prefix) {
			out = append(out, v)
		}
	}
	return out
}
