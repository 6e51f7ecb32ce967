package systemtest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/apmtel/apmtel/internal/console"
	"github.com/apmtel/apmtel/internal/testenv"
)

// A page of another origin (a second loopback server) frames every page and
// API of a real monitor process in chromium: each frame is refused
// (frame-ancestors 'none', X-Frame-Options DENY), while a frame of a server
// without those headers loads (the detection works).
func TestMonitorCannotBeFramed(t *testing.T) {
	t.Parallel()
	chrome, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed: framing test skipped")
	}
	s := newStack(t)
	monAddr := testenv.FreeAddr(t)
	env := s.env(t, testenv.ESURL(t), "APMTEL_MONITOR_ADDR="+monAddr)
	s.Start("monitor", env, "monitor")
	mon := "http://" + monAddr
	s.Eventually(20*time.Second, "the monitor", func() bool {
		res, err := http.Get(mon + "/healthz")
		if err == nil {
			res.Body.Close()
		}
		return err == nil && res.StatusCode == 200
	})
	paths := []string{"/monitoring/", "/monitoring/api/queues", console.RunsPath, "/metrics", "/healthz", "/readyz"}
	for _, p := range paths {
		res, err := http.Get(mon + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		for k, v := range map[string]string{"Content-Security-Policy": "frame-ancestors 'none'", "X-Frame-Options": "DENY",
			"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"} {
			if got := res.Header.Get(k); got != v {
				t.Errorf("GET %s: %s %q, want %q", p, k, got, v)
			}
		}
	}

	control := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<p>frameable</p>")) }))
	defer control.Close()
	var frames strings.Builder
	for _, p := range paths {
		fmt.Fprintf(&frames, "<iframe src=%q></iframe>\n", mon+p)
	}
	fmt.Fprintf(&frames, "<iframe src=%q></iframe>\n", control.URL+"/")
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("<!doctype html><html><body>" + frames.String() + "</body></html>"))
	}))
	defer attacker.Close()

	actx, cancelA := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(chrome),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.UserDataDir(t.TempDir()))
	defer cancelA()
	ctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	ctx, cancelC := context.WithTimeout(ctx, 60*time.Second)
	defer cancelC()
	if err := chromedp.Do(ctx, chromedp.Navigate(attacker.URL)); err != nil {
		t.Fatal(err)
	}
	// frame URL → blocked (an error page stands in for it).
	var got map[string]bool
	s.Eventually(30*time.Second, "every frame to load or be refused", func() bool {
		res, err := chromedp.Call(ctx, page.GetFrameTree, cdp.Empty{})
		if err != nil || res.FrameTree == nil {
			return false
		}
		tree := res.FrameTree
		got = map[string]bool{}
		for _, c := range tree.ChildFrames {
			u, blocked := c.Frame.URL, c.Frame.UnreachableURL != "" || strings.HasPrefix(c.Frame.URL, "chrome-error:")
			if c.Frame.UnreachableURL != "" {
				u = c.Frame.UnreachableURL
			}
			if u == "about:blank" || u == "" {
				return false
			}
			got[u] = blocked
		}
		return len(got) == len(paths)+1
	})
	for _, p := range paths {
		if blocked, ok := got[mon+p]; !ok || !blocked {
			t.Errorf("%s: framed by %s (seen %v, refused %v)", p, attacker.URL, ok, blocked)
		}
	}
	if blocked, ok := got[control.URL+"/"]; !ok || blocked {
		t.Errorf("the control frame (no headers) was not loaded: seen %v, refused %v; the detection proves nothing", ok, blocked)
	}
}
