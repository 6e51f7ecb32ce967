// Package version says which build of apmtel is running: the module version,
// commit, build date and Go version. Release builds stamp them with
//
//	go build -ldflags "-X github.com/apmtel/apmtel/internal/version.version=v1.2.3
//	  -X github.com/apmtel/apmtel/internal/version.commit=abc123
//	  -X github.com/apmtel/apmtel/internal/version.date=2025-01-02T03:04:05Z"
//
// (the Dockerfile does); without them the values come from the Go toolchain's
// build info (module version for `go install`, VCS stamp for a build inside a
// git checkout), so a plain `go build` still reports something true.
package version
