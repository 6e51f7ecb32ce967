package cli

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/apmtel/apmtel/internal/telemetry"
)

// completeWith runs `apmtel __complete args...` in-process, as the shell
// scripts of `apmtel completion` do, and returns the candidates (without
// their descriptions) and the directive line.
func completeWith(t *testing.T, args ...string) ([]string, string) {
	t.Helper()
	out, errOut, code := runMain(nil, append([]string{"__complete"}, args...)...)
	if code != 0 {
		t.Fatalf("__complete %q: exit %d, %s", args, code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	directive := lines[len(lines)-1]
	var cands []string
	for _, l := range lines[:len(lines)-1] {
		v, _, _ := strings.Cut(l, "\t")
		cands = append(cands, v)
	}
	return cands, directive
}

const (
	noFiles = ":4" // cobra.ShellCompDirectiveNoFileComp
	files   = ":0" // cobra.ShellCompDirectiveDefault
)

func TestCompletionValues(t *testing.T) {
	tasks := telemetry.Default().Names()
	without := func(drop string) []string {
		return slices.DeleteFunc(slices.Clone(tasks), func(s string) bool { return s == drop })
	}
	for _, tc := range []struct {
		args      []string
		want      []string
		directive string
	}{
		{[]string{"run", "--task", ""}, tasks, noFiles},
		{[]string{"run", "--task", "ag"}, []string{"aggregated_transactions", "agent_configuration", "agents"}, noFiles},
		{[]string{"run", "--task=ag"}, []string{"aggregated_transactions", "agent_configuration", "agents"}, noFiles},
		{[]string{"preview", "--parallel", "2", "--task", "top"}, []string{"top_traces"}, noFiles},
		{[]string{"run", ""}, tasks, noFiles},
		{[]string{"run", "agents", ""}, without("agents"), noFiles},
		// --wait takes no value: the next word is a task again.
		{[]string{"run", "--wait", "car"}, []string{"cardinality"}, noFiles},
		{[]string{"worker", "--log-level", ""}, []string{"trace", "debug", "info", "warn", "error"}, noFiles},
		{[]string{"scheduler", "--log-format="}, []string{"console", "json"}, noFiles},
		{[]string{"telemetry-index", "setup", "--dynamic", "s"}, []string{"strict"}, noFiles},
		{[]string{"sample", "telemetry", "--from", ""}, []string{"snapshot", "collect", "auto"}, noFiles},
		// A value without a list (a path, a number): the shell completes files.
		{[]string{"worker", "--redis-ca-cert", ""}, nil, files},
		{[]string{"sample", "apm", "--docs", ""}, nil, files},
		{[]string{"sample", ""}, []string{"apm", "telemetry"}, noFiles},
		{[]string{"schema", "e"}, []string{"es-mapping"}, noFiles},
		{[]string{"telemetry-index", ""}, []string{"setup"}, noFiles},
		{[]string{"worker", ""}, nil, noFiles},
		// run's --task-timeout would not bound the workers' tasks: no such flag.
		{[]string{"run", "--t"}, []string{"--timeout", "--task"}, noFiles},
		{[]string{"sample", "apm", "--d"}, []string{"--days", "--docs"}, noFiles},
		{[]string{"healthcheck", "--"}, []string{"--url", "--timeout", "--help"}, noFiles},
		// Secrets have no flag, so none is offered.
		{[]string{"worker", "--redis-p"}, nil, noFiles},
	} {
		got, directive := completeWith(t, tc.args...)
		if !slices.Equal(got, tc.want) || directive != tc.directive {
			t.Errorf("__complete %q = %q %s, want %q %s", tc.args, got, directive, tc.want, tc.directive)
		}
	}
}

// helpFlag is a flag line of a command's help as pflag prints it:
// "  -w, --wait" or "      --timeout duration".
var helpFlag = regexp.MustCompile(`(?m)^ +(?:-[a-z], )?--([a-z][a-z0-9-]*)`)

// leafCommands are the word paths of every runnable command without subcommands.
func leafCommands() [][]string {
	var out [][]string
	var walk func(prefix []string, cs []command)
	walk = func(prefix []string, cs []command) {
		for _, c := range cs {
			words := append(slices.Clone(prefix), c.name)
			if len(c.subs) > 0 {
				walk(words, c.subs)
				continue
			}
			out = append(out, words)
		}
	}
	walk(nil, commands())
	return out
}

// Every command completes "--" to exactly the flags its help lists, --help
// included; none is a secret's.
func TestCompletionFlagsAreTheHelpFlags(t *testing.T) {
	for _, words := range leafCommands() {
		out, errOut, _ := runMain(nil, append(slices.Clone(words), "--help")...)
		var want []string
		for _, m := range helpFlag.FindAllStringSubmatch(out+errOut, -1) {
			want = append(want, "--"+m[1])
		}
		got, directive := completeWith(t, append(slices.Clone(words), "--")...)
		slices.Sort(want)
		want = slices.Compact(want)
		slices.Sort(got)
		if len(want) < 1 || !slices.Equal(got, want) || directive != noFiles {
			t.Errorf("%v: completes -- to %q %s; its help lists %q", words, got, directive, want)
		}
		for _, f := range got {
			if strings.Contains(f, "password") || strings.Contains(f, "token") || strings.Contains(f, "api-key") {
				t.Errorf("%v: completes the secret flag %s", words, f)
			}
		}
	}
}

// The log values completion offers are exactly what the configuration
// accepts: each one passes Validate, a value beside them does not.
func TestCompletionLogValuesAreValid(t *testing.T) {
	for env, flagName := range map[string]string{"APMTEL_LOG_LEVEL": "log-level", "APMTEL_LOG_FORMAT": "log-format"} {
		vals := flagValues(flagName)
		if len(vals) == 0 {
			t.Fatalf("no values for --%s", flagName)
		}
		for _, v := range append(slices.Clone(vals), "verbose") {
			// runs without Redis: a valid value gets as far as dialling (exit 1).
			_, errOut, code := runMain(map[string]string{env: v, "APMTEL_REDIS_ADDR": "127.0.0.1:1"}, "runs")
			if valid := v != "verbose"; valid != (code != 2) {
				t.Errorf("%s=%s: exit %d (%q); completion offers it: %v", env, v, code, errOut, valid)
			}
		}
	}
}
