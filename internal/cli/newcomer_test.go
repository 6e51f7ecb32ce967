package cli

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/apmtel/apmtel/internal/config"
)

// noRedis points a command at a port nothing listens on: a command that
// gets as far as Redis exits 1 with "cannot reach Redis".
var noRedis = map[string]string{"APMTEL_REDIS_ADDR": "127.0.0.1:1"}

// The CLI as a newcomer met it: each case is a surprise that was reported,
// with the one line and the exit status that answer it now.
func TestCLIUsageAnswers(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		// want is the whole stderr (one line) when it ends in "\n", else a part of it.
		want string
	}{
		{"preview without a source", nil, []string{"preview"}, 2,
			"apmtel preview: APMTEL_SOURCE_URL: the source cluster is not configured\n"},
		{"timeout without wait", noRedis, []string{"run", "--timeout", "5s"}, 2, "apmtel run: --timeout needs --wait\n"},
		{"json without wait", noRedis, []string{"run", "cloud", "--json"}, 2, "apmtel run: --json needs --wait\n"},
		{"task-timeout on run does nothing", noRedis, []string{"run", "--task-timeout", "150ms", "--wait"}, 2,
			"apmtel run: --task-timeout is no flag of apmtel run: APMTEL_TASK_TIMEOUT is the workers' setting, read from the environment\n"},
		{"tasks extra", nil, []string{"tasks", "extra"}, 2, `apmtel tasks: unexpected argument "extra"`},
		{"version extra", nil, []string{"version", "extra"}, 2, `apmtel version: unexpected argument "extra"`},
		{"runs two ids", noRedis, []string{"runs", "a", "b"}, 2, `apmtel runs: unexpected argument "b"`},
		{"cancel without id", noRedis, []string{"cancel"}, 2, "apmtel cancel: RUN missing"},
		{"help of an unknown command", nil, []string{"help", "rnu"}, 2,
			`apmtel help: unknown command "rnu" (did you mean "run"?); see apmtel --help` + "\n"},
		{"unknown subcommand", nil, []string{"schema", "chekc"}, 2, `apmtel schema: unknown command "chekc" (did you mean "check"?)`},
		{"unknown shorthand", noRedis, []string{"run", "-x"}, 2, "apmtel run: unknown flag -x (see apmtel run --help)\n"},
		{"flag typo", noRedis, []string{"run", "--wiat"}, 2, "apmtel run: unknown flag --wiat (did you mean --wait?)\n"},
		{"bad duration on a flag speaks as the environment", noRedis, []string{"run", "--wait", "--timeout", "soon"}, 2,
			`apmtel run: --timeout: "soon" is not a duration (like 30s, 5m, 12h)` + "\n"},
		{"bad duration on a setting flag", noRedis, []string{"scheduler", "--run-deadline=soon"}, 2,
			`apmtel scheduler: --run-deadline: "soon" is not a duration (like 30s, 5m, 12h)` + "\n"},
		{"bad duration in the environment", map[string]string{"APMTEL_RUN_DEADLINE": "soon"}, []string{"scheduler"}, 2,
			`apmtel scheduler: APMTEL_RUN_DEADLINE: "soon" is not a duration (like 30s, 5m, 12h)` + "\n"},
		{"bad int on a flag", noRedis, []string{"runs", "--limit", "many"}, 2, `apmtel runs: --limit: "many" is not an integer` + "\n"},
		{"a setting the command does not read", noRedis, []string{"runs", "--interval", "1h"}, 2,
			"apmtel runs: --interval: apmtel runs does not read APMTEL_INTERVAL\n"},
		{"opt-in on run", noRedis, []string{"run", "--opt-in=false"}, 2, "apmtel run: --opt-in is a worker setting: use `apmtel run --no-upload`"},
		{"a worker's tuning does not stop run", map[string]string{"APMTEL_REDIS_ADDR": "127.0.0.1:1", "APMTEL_INTERVAL": "30s", "APMTEL_CONCURRENCY": "0"},
			[]string{"run", "cloud"}, 1, "apmtel run: cannot reach Redis"},
		{"task typo", noRedis, []string{"run", "clod"}, 2, "apmtel run: unknown telemetry task clod (did you mean cloud?)"},
		{"task typo as a flag", noRedis, []string{"preview", "--task", "agnets"}, 2, "unknown telemetry task agnets (did you mean agents?)"},
		{"secret as a flag", nil, []string{"worker", "--redis-password=hunter2"}, 2,
			"apmtel worker: --redis-password: secrets are not accepted as flags (any user can read a process's command line): set APMTEL_REDIS_PASSWORD or APMTEL_REDIS_PASSWORD_FILE instead\n"},
		{"empty URL list items", map[string]string{"APMTEL_SOURCE_URL": "http://h:1,,,"}, []string{"preview"}, 2,
			"APMTEL_SOURCE_URL: empty item in the comma-separated list"},
		{"unbounded concurrency", map[string]string{"APMTEL_SEARCH_CONCURRENCY": "9223372036854775807"}, []string{"worker"}, 2,
			"APMTEL_SEARCH_CONCURRENCY: 9223372036854775807 is out of range 0-1024"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runMain(tc.env, tc.args...)
			ok := code == tc.code && strings.Count(errOut, "\n") == 1 && !strings.Contains(errOut, "hunter2")
			if strings.HasSuffix(tc.want, "\n") {
				ok = ok && errOut == tc.want
			} else {
				ok = ok && strings.Contains(errOut, tc.want)
			}
			if !ok || code == 2 && out != "" {
				t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d, %q", tc.args, code, out, errOut, tc.code, tc.want)
			}
		})
	}
}

// Help teaches: run leads with --wait and shows the patterns' defaults,
// no deprecated alias; tasks, which needs no Redis, lists no Redis flag;
// preview lists none of the settings it does not read.
func TestHelpListsWhatTheCommandReads(t *testing.T) {
	run, _, _ := runMain(nil, "help", "run")
	first := regexp.MustCompile(`(?m)^ +(?:-[a-z], )?--([a-z-]+)`).FindStringSubmatch(run)
	if first == nil || first[1] != "wait" || strings.Contains(run, "wait-timeout") || strings.Contains(run, "--task-timeout") ||
		!strings.Contains(run, `(default "traces-apm*,apm-*,traces-*.otel-*")`) || !strings.Contains(run, "(default 30m)") {
		t.Errorf("help run:\n%s", run)
	}
	tasks, _, _ := runMain(nil, "help", "tasks")
	if strings.Contains(tasks, "--redis") || strings.Contains(tasks, "tls") || !strings.Contains(tasks, "--json") {
		t.Errorf("help tasks:\n%s", tasks)
	}
	preview, _, _ := runMain(nil, "help", "preview")
	for _, notRead := range []string{"--history-limit", "--history-ttl", "--catchup-grace", "--run-deadline", "--max-retry", "--upload-retry-window"} {
		if strings.Contains(preview, notRead) {
			t.Errorf("help preview lists %s, which preview does not read", notRead)
		}
	}
}

// Every flag of every command is either the command's own (declared in
// its command) or a setting of a group it reads, and every setting flag
// is in docs/configuration.md; the global ones are listed as global.
func TestEveryFlagIsReadOrGlobal(t *testing.T) {
	var walk func(prefix string, cs []command)
	walk = func(prefix string, cs []command) {
		for _, c := range cs {
			name := strings.TrimSpace(prefix + " " + c.name)
			if len(c.subs) > 0 {
				walk(name, c.subs)
				continue
			}
			own := new(pflag.FlagSet)
			if c.flags != nil {
				c.flags(own)
			}
			help, _, code := runMain(nil, append(strings.Fields(name), "--help")...)
			if code != 0 {
				t.Errorf("%s --help: exit %d", name, code)
			}
			settings := new(pflag.FlagSet)
			config.AddFlags(settings, c.groups...)
			for _, m := range helpFlag.FindAllStringSubmatch(help, -1) {
				f := m[1]
				switch {
				case f == "help" || own.Lookup(f) != nil:
				case settings.Lookup(f) != nil && !slices.Contains(c.envOnly, f):
					o, _ := config.OptionOf(settings.Lookup(f))
					global := slices.Contains(globalGroups, o.Group)
					if section := helpSection(help, f); global != (section == "Global flags") {
						t.Errorf("%s: --%s is in section %q", name, f, section)
					}
				default:
					t.Errorf("%s: --%s is neither its own flag nor a setting it reads", name, f)
				}
			}
		}
	}
	walk("", commands())
}

// helpSection is the title of the help section that lists --flag.
func helpSection(help, flag string) string {
	section := ""
	for _, l := range strings.Split(help, "\n") {
		if strings.HasSuffix(l, ":") && !strings.HasPrefix(l, " ") {
			section = strings.TrimSuffix(l, ":")
		}
		if regexp.MustCompile(`^ +(?:-[a-z], )?--` + regexp.QuoteMeta(flag) + `\b`).MatchString(l) {
			return section
		}
	}
	return ""
}

// tasks says what each task collects and marks the behavioural ones; its
// --json carries both, as one document.
func TestTasksDescribeThemselves(t *testing.T) {
	out, _, code := runMain(nil, "tasks")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 21 || !strings.Contains(lines[1], "cloud providers") ||
		!strings.HasSuffix(lines[19], "[behavioural: application_usage]") || strings.Contains(lines[0], "behavioural") {
		t.Errorf("tasks: exit %d\n%s", code, out)
	}
	out, _, _ = runMain(nil, "tasks", "--json")
	var tasks []struct {
		Name        string `json:"name"`
		Behavioural bool   `json:"behavioural"`
		Summary     string `json:"summary"`
	}
	if err := json.Unmarshal([]byte(out), &tasks); err != nil {
		t.Fatal(err)
	}
	behavioural := 0
	for _, tk := range tasks {
		if tk.Summary == "" || taskSummaries[tk.Name] != tk.Summary {
			t.Errorf("task %s: summary %q", tk.Name, tk.Summary)
		}
		if tk.Behavioural {
			behavioural++
		}
	}
	if len(tasks) != 21 || behavioural != 2 {
		t.Errorf("tasks --json: %d tasks, %d behavioural", len(tasks), behavioural)
	}
}

// Every command that offers --json prints exactly one JSON document on
// stdout (the Redis-backed ones: TestRunsAndCancelAgreeWithTheRecords,
// TestRunWaitJSONIsOnlyJSON).
func TestJSONOutputIsOneDocument(t *testing.T) {
	for _, args := range [][]string{{"tasks", "--json"}, {"version", "--json"}} {
		out, errOut, code := runMain(nil, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d %s", args, code, errOut)
		}
		mustJSON(t, strings.Join(args, " "), out)
	}
	// --json where it would not be the output is refused, not ignored.
	if _, errOut, code := runMain(noRedis, "snapshot", "--json"); code != 2 || !strings.Contains(errOut, "--json needs --report") {
		t.Errorf("snapshot --json: exit %d, %q", code, errOut)
	}
}

// docs/configuration.md says which commands read each group of settings;
// that list is the commands' own.
func TestConfigurationDocSaysWhoReadsWhat(t *testing.T) {
	b, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	readers := map[string][]string{}
	var walk func(prefix string, cs []command)
	walk = func(prefix string, cs []command) {
		for _, c := range cs {
			name := strings.TrimSpace(prefix + " " + c.name)
			walk(name, c.subs)
			for _, g := range c.groups {
				readers[g] = append(readers[g], name)
			}
		}
	}
	walk("", commands())
	row := regexp.MustCompile("(?m)^\\| ([a-z]+) \\| `[^|]*\\| ([^|]*) \\|$")
	seen := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		seen[m[1]] = true
		if want := strings.Join(readers[m[1]], ", "); strings.TrimSpace(m[2]) != want {
			t.Errorf("group %s: the doc says it is read by %q; the commands that read it: %q", m[1], m[2], want)
		}
	}
	for g := range readers {
		if !seen[g] {
			t.Errorf("group %s is not in docs/configuration.md", g)
		}
	}
}

// The CLI's tables end their lines where the text ends: an empty last
// column (a data task's mark, a task without an error) left blanks that a
// `diff` or `grep 'ok$'` of the output tripped over. Columns stay aligned.
func TestTablesHaveNoTrailingBlanks(t *testing.T) {
	env := redisEnv(t)
	out, errOut, code := runMain(env, "run", "cloud", "host")
	id := strings.TrimSpace(out)
	if code != 0 || id == "" {
		t.Fatalf("run: exit %d, %q %q", code, out, errOut)
	}
	for _, args := range [][]string{{"tasks"}, {"runs"}, {"runs", id}, {"snapshot", id, "--report"}} {
		out, errOut, code := runMain(env, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d %s", args, code, errOut)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		for i, l := range lines {
			if strings.TrimRight(l, " \t") != l {
				t.Errorf("%v line %d ends in blanks: %q", args, i+1, l)
			}
		}
		// Aligned: the second column starts at the same offset on every row
		// of the table (the lines before the first one that is no row).
		col := -1
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) < 2 || strings.HasPrefix(l, "run ") {
				break
			}
			at := strings.Index(l[len(f[0]):], f[1]) + len(f[0])
			if col == -1 {
				col = at
			} else if at != col {
				t.Errorf("%v: column 2 at %d, want %d: %q", args, at, col, l)
			}
		}
	}
	// A task of an open run that no worker has started yet is queued, as
	// `run --wait` says, not a blank STATUS.
	out, _, _ = runMain(env, "snapshot", id, "--report")
	if lines := strings.Split(out, "\n"); !strings.HasPrefix(lines[1], "cloud") || strings.Fields(lines[1])[1] != "queued" {
		t.Errorf("snapshot --report of an open run:\n%s", out)
	}
	out, _, _ = runMain(env, "tasks")
	if lines := strings.Split(out, "\n"); !strings.HasSuffix(lines[1], "availability zones the agents report") {
		t.Errorf("tasks line 2 = %q, want it to end with the summary", lines[1])
	}
}
