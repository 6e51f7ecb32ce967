package config

import "slices"

// Logging is how apmtel logs (zerolog).
type Logging struct {
	// LogLevel is zerolog's level name; LogFormat is "json" or "console".
	LogLevel  string
	LogFormat string
}

// LogLevels and LogFormats are the values Validate accepts (and completion offers).
var (
	LogLevels  = []string{"trace", "debug", "info", "warn", "error"}
	LogFormats = []string{"console", "json"}
)

// DefaultLogging logs info and above for people to read.
func DefaultLogging() Logging { return Logging{LogLevel: "info", LogFormat: "console"} }

// Validate checks the names.
func (l Logging) Validate() error {
	var p problems
	if !slices.Contains(LogFormats, l.LogFormat) {
		p.add("APMTEL_LOG_FORMAT", "%q is not json or console", l.LogFormat)
	}
	if !slices.Contains(LogLevels, l.LogLevel) {
		p.add("APMTEL_LOG_LEVEL", "%q is not one of trace, debug, info, warn, error", l.LogLevel)
	}
	return p.err()
}
