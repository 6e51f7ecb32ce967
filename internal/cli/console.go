package cli

import (
	"net"
	"net/http"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/apmtel/apmtel/internal/config"
	"github.com/apmtel/apmtel/internal/console"
	"github.com/apmtel/apmtel/internal/fleet"
	"github.com/apmtel/apmtel/internal/fleetstatus"
	"github.com/apmtel/apmtel/internal/logs"
)

// mountConsole serves the operator console (internal/console) on the
// monitor's mux, behind the monitor's guard. The sink only names where a
// run's document goes; a sink that cannot be built leaves that unknown.
func mountConsole(mux *http.ServeMux, cfg config.Config, l zerolog.Logger, rdb redis.UniversalClient, src fleet.Source, clusters fleetstatus.Reader) error {
	ml := logs.Named(l, logs.Monitor)
	sink, err := newSink(cfg, l)
	if err != nil {
		ml.Warn().Err(err).Msg("console: upload target unknown")
	}
	return console.Register(mux, console.Options{Runs: newRuns(rdb, cfg), MonitorPath: "/monitoring", Sink: sink,
		Limit: max(cfg.HistoryLimit, 30), Logger: ml,
		Fleet: src, Clusters: clusters, Schedule: fleetstatus.Schedule{Interval: cfg.Interval, Spread: cfg.Fleet.Spread(cfg.Interval)}})
}

// consoleRunURL is the console page of run id on the monitor at
// APMTEL_MONITOR_ADDR, for `apmtel run --wait`'s last line ("" when the
// monitor's address is not known). A monitor bound to every interface is
// named by its first APMTEL_MONITOR_HOSTS entry, else as localhost.
func consoleRunURL(cfg config.Config, id string) string {
	host, port, err := net.SplitHostPort(cfg.MonitorAddr)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
		if len(cfg.MonitorHosts) > 0 && cfg.MonitorHosts[0] != "" {
			h := cfg.MonitorHosts[0]
			if strings.Contains(h, ":") {
				return "http://" + h + console.RunURL(id)
			}
			host = h
		}
	}
	return "http://" + net.JoinHostPort(host, port) + console.RunURL(id)
}
