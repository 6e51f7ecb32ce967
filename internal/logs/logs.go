package logs

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// Component names, the "component" field of every log line.
const (
	Scheduler = "scheduler"
	Worker    = "worker"
	Collect   = "collect"
	Finalize  = "finalize"
	Upload    = "upload"
	Monitor   = "monitor"
	CLI       = "cli"
	Redis     = "redis"
	Asynq     = "asynq"
	Sample    = "sample"
	Health    = "health"
	Janitor   = "janitor"
)

// New returns the root logger writing to w ("console" or "json" format).
func New(w io.Writer, level, format string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("log level: %w", err)
	}
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339, NoColor: !isTerminal(w)}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// Named returns l for one component.
func Named(l zerolog.Logger, component string) zerolog.Logger {
	return l.With().Str("component", component).Logger()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// AsynqLogger adapts zerolog to asynq.Logger.
type AsynqLogger struct{ L zerolog.Logger }

func (a AsynqLogger) Debug(args ...any) { a.L.Debug().Msg(fmt.Sprint(args...)) }
func (a AsynqLogger) Info(args ...any)  { a.L.Info().Msg(fmt.Sprint(args...)) }
func (a AsynqLogger) Warn(args ...any)  { a.L.Warn().Msg(fmt.Sprint(args...)) }
func (a AsynqLogger) Error(args ...any) { a.L.Error().Msg(fmt.Sprint(args...)) }
func (a AsynqLogger) Fatal(args ...any) { a.L.Fatal().Msg(fmt.Sprint(args...)) }
