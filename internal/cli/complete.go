package cli

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/apmtel/apmtel/internal/telemetry"
)

// Shell completion. The subcommands parse their own flags (DisableFlagParsing),
// so cobra knows none of them; completion asks the command itself: its run
// function is called in a collecting mode in which the first flag set it
// would parse (load's: the command's own flags plus its option groups', the
// same set its help prints) is handed over instead of parsed, and nothing runs.

// errCollected stops a command once completion has its flag set.
var errCollected = errors.New("flags collected for completion")

// parse parses fs with args, or, while completing, hands fs over and stops
// the command. Every command parses its flags through here (load does).
func (e *env) parse(fs *flag.FlagSet, args []string) error {
	if e.collect != nil {
		*e.collect = fs
		return errCollected
	}
	return fs.Parse(args)
}

// flagsOf returns the flag set command c parses after the leading words of
// args (the subcommand of sample, schema, telemetry-index), or nil when the
// command stops before parsing any (no subcommand given yet).
func flagsOf(c command, args []string) *flag.FlagSet {
	var words []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			break
		}
		words = append(words, a)
	}
	var fs *flag.FlagSet
	e := &env{stdout: io.Discard, stderr: io.Discard, lookup: func(string) (string, bool) { return "", false },
		groups: c.groups, collect: &fs}
	_ = c.run(e, words)
	return fs
}

// subcommands are the first words of the commands that have them.
var subcommands = map[string][]string{
	"sample":          {"apm", "telemetry"},
	"schema":          {"mapping", "check", "es-mapping", "paths"},
	"telemetry-index": {"setup"},
}

// flagValues are the values of the flags that take one of a few. The log
// options' are the ones config.Validate accepts (TestCompletionValues holds
// them to it); the task flags take task names.
func flagValues(name string) []string {
	switch name {
	case "task":
		return telemetry.Default().Names()
	case "log-level":
		return []string{"trace", "debug", "info", "warn", "error"}
	case "log-format":
		return []string{"console", "json"}
	case "dynamic":
		return []string{"true", "false", "strict"}
	case "from":
		return []string{"snapshot", "collect", "auto"}
	}
	return nil
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// complete answers cobra's __complete for command c: args are the words
// after the command, toComplete the word under the cursor.
func complete(c command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	fs := flagsOf(c, args)
	lookup := func(name string) *flag.Flag {
		if fs == nil {
			return nil
		}
		return fs.Lookup(name)
	}
	// The value of a flag: --name=<TAB>, or --name <TAB>. Values come bare
	// in both forms, as for cobra's own flags: the shell scripts cobra
	// generates complete the part after the "=" and keep the flag.
	if name, val, ok := strings.Cut(strings.TrimLeft(toComplete, "-"), "="); ok && strings.HasPrefix(toComplete, "-") {
		if f := lookup(name); f != nil {
			return matching(flagValues(name), val), valueDirective(name)
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	if n := len(args); n > 0 && strings.HasPrefix(args[n-1], "-") && !strings.Contains(args[n-1], "=") {
		if f := lookup(strings.TrimLeft(args[n-1], "-")); f != nil && !isBool(f) {
			return matching(flagValues(f.Name), toComplete), valueDirective(f.Name)
		}
	}
	if strings.HasPrefix(toComplete, "-") {
		var out []string
		if fs != nil {
			fs.VisitAll(func(f *flag.Flag) {
				if name := "--" + f.Name; strings.HasPrefix(name, toComplete) {
					out = append(out, cobra.CompletionWithDesc(name, firstLine(f.Usage)))
				}
			})
		}
		if strings.HasPrefix("--help", toComplete) {
			out = append(out, cobra.CompletionWithDesc("--help", "the command's flags and their variables"))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
	// Positional words.
	if subs, ok := subcommands[c.name]; ok {
		if len(args) == 0 {
			return matching(subs, toComplete), cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	if c.name == "run" || c.name == "preview" {
		var out []string
		for _, t := range matching(telemetry.Default().Names(), toComplete) {
			if !slices.Contains(args, t) {
				out = append(out, t)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// valueDirective: a flag without a list of values (a path, an address, a
// number) gets the shell's file completion; one with a list gets the list.
func valueDirective(name string) cobra.ShellCompDirective {
	if flagValues(name) == nil {
		return cobra.ShellCompDirectiveDefault
	}
	return cobra.ShellCompDirectiveNoFileComp
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

// firstLine keeps a completion's description to one line, without the
// [APMTEL_*] variable the help appends (shells cut long descriptions).
func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if i := strings.LastIndex(s, " [APMTEL_"); i > 0 {
		s = s[:i]
	}
	return s
}
