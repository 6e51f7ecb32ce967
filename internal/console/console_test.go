package console

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/run"
	"github.com/apmtel/apmtel/internal/runtest"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// What each kind of run says about its document, and bad requests.
func TestConsolePages(t *testing.T) {
	f := newFixture(t)
	if _, err := runtest.Seed(context.Background(), f.st, runtest.Spec{ID: "dry-1", Kind: run.KindDryRun, Tasks: f.tasks[:2],
		Start: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		code int
		want []string
	}{
		{"/runs/dry-1", 200, []string{"Not sent: a dry run", "Telemetry object", `id="document"`}},
		{"/runs/cancelled-1", 200, []string{"Not sent: the run was cancelled", `data-status="cancelled"`}},
		{"/runs/scheduled-0", 200, []string{"Sent: uploaded to telemetry/c1u2u3i4d:scheduled-0"}},
		{"/runs/nope", 404, []string{"run nope is not in the history"}},
		{"/runs?status=bogus", 400, []string{`unknown status "bogus"`}},
		{"/runs?status=failed", 200, []string{`data-run="` + f.main.ID + `"`}},
		{"/history?kind=dry-run", 200, []string{`data-run="dry-1"`}},
		{"/history?kind=bogus", 400, []string{`unknown kind "bogus": want all, full, partial or dry-run`}},
		{"/history?kind=all", 200, []string{`data-run="dry-1"`, `<option value="all" selected>all</option>`}},
		{"/history", 200, []string{`<option value="full" selected>full</option>`}},
	} {
		code, body := get(t, f.url+tc.path)
		if code != tc.code {
			t.Errorf("GET %s = %d, want %d: %.300s", tc.path, code, tc.code, body)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s lacks %q", tc.path, w)
			}
		}
	}
	// /history defaults to full runs: the dry run is not charted.
	if _, body := get(t, f.url+"/history"); strings.Contains(body, `data-run="dry-1"`) {
		t.Error("/history charts a dry run by default")
	}
	// Only failed runs under ?status=failed.
	if _, body := get(t, f.url+"/runs?status=failed"); strings.Contains(body, `data-run="scheduled-0"`) {
		t.Error("?status=failed lists a run without failed tasks")
	}
}
