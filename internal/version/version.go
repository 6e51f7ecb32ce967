package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by -ldflags -X; empty means "ask the build info".
var (
	version string
	commit  string
	date    string
)

// Info describes one build.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"go_version"`
	// Modified is true when the VCS stamp says the tree had uncommitted changes.
	Modified bool `json:"modified,omitempty"`
}

// Get returns the running binary's build information.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return resolve(version, commit, date, bi)
}

// resolve prefers the ldflags values and falls back to the build info field
// by field, so a build stamped with only a version still shows its commit.
func resolve(v, c, d string, bi *debug.BuildInfo) Info {
	in := Info{Version: v, Commit: c, Date: d, GoVersion: runtime.Version()}
	if bi != nil {
		if bi.GoVersion != "" {
			in.GoVersion = bi.GoVersion
		}
		if in.Version == "" && bi.Main.Version != "" {
			in.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if in.Commit == "" {
					in.Commit = s.Value
				}
			case "vcs.time":
				if in.Date == "" {
					in.Date = s.Value
				}
			case "vcs.modified":
				in.Modified = s.Value == "true" && c == ""
			}
		}
	}
	// "(devel)" is what the toolchain says for a build from a checkout.
	if in.Version == "" {
		in.Version = "(devel)"
	}
	if in.Commit == "" {
		in.Commit = "unknown"
	}
	if in.Date == "" {
		in.Date = "unknown"
	}
	return in
}

// String is the one-line form `apmtel version` prints.
func (in Info) String() string {
	c := in.Commit
	if in.Modified {
		c += "-dirty"
	}
	return fmt.Sprintf("apmtel %s (commit %s, built %s, %s)", in.Version, c, in.Date, in.GoVersion)
}
