package health

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"strings"
)

// DefaultURL is what `apmtel healthcheck` probes without --url: the readiness
// endpoint of APMTEL_HTTP_ADDR when set (worker, scheduler), else of the
// monitor. A wildcard host (":8081", "0.0.0.0:8081", "[::]:8081") is probed
// on loopback, since the check runs inside the same container or pod.
func DefaultURL(httpAddr, monitorAddr string) string {
	addr := httpAddr
	if addr == "" {
		addr = monitorAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + ReadyPath
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port) + ReadyPath
}

// Probe GETs url and returns nil on a 2xx answer. Otherwise the error is one
// line: the status and the first line of the body, or why no answer came.
func Probe(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("bad URL %q: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		// *url.Error repeats method and URL; keep the cause only.
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return nil
	}
	line, _ := bufio.NewReader(io.LimitReader(resp.Body, 512)).ReadString('\n')
	line = strings.TrimSpace(line)
	if line == "" {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return fmt.Errorf("GET %s: %s: %s", url, resp.Status, line)
}
