package console

import (
	"fmt"
	"testing"
	"time"
)

// runsAt are n runs, run i created at start + gaps[i%len(gaps)] after run i-1.
func runsAt(start time.Time, n int, gaps ...time.Duration) []axisRun {
	xs := make([]axisRun, n)
	at := start
	for i := range xs {
		if i > 0 {
			at = at.Add(gaps[i%len(gaps)])
		}
		xs[i] = axisRun{ID: fmt.Sprintf("run-%02d", i), At: at}
	}
	return xs
}

func TestAxisLayout(t *testing.T) {
	noon := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		xs   []axisRun
		want string
	}{
		{"one day, minutes apart", runsAt(noon, 5, 7*time.Minute), "15:04"},
		{"two days", runsAt(noon, 5, 4*time.Hour), "01-02 15:04"},
		{"two in one minute", runsAt(noon, 4, 7*time.Minute, 20*time.Second), "15:04:05"},
		{"two in one second", runsAt(noon, 4, 7*time.Minute, 300*time.Millisecond), "15:04:05.000"},
		{"minute boundary is not a shared minute", runsAt(noon.Add(-time.Second), 2, 2*time.Second), "15:04"},
		{"two days and one minute", runsAt(noon, 6, 8*time.Hour, 5*time.Second), "01-02 15:04:05"},
	} {
		if got := axisLayout(tc.xs); got != tc.want {
			t.Errorf("%s: layout %q, want %q", tc.name, got, tc.want)
		}
	}
}

// The labels of every chart size and run count: the first and the newest run
// labelled, no two labels closer than labelGap (under the width bound the
// layout assumes; the browser test measures the rendered text), labels in
// run order, distinct, and as many as fit.
func TestXLabelsFit(t *testing.T) {
	noon := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, width := range []float64{320, 1000} {
		for _, n := range []int{1, 2, 3, 7, 12, 30, 100} {
			for _, gaps := range [][]time.Duration{{7 * time.Minute}, {7 * time.Minute, 10 * time.Second}, {5 * time.Hour}} {
				xs := runsAt(noon, n, gaps...)
				c := plotChart("t", width, 120, xs)
				ls := c.XLabels
				name := fmt.Sprintf("width %.0f, %d runs, gaps %v", width, n, gaps)
				if len(ls) == 0 || ls[len(ls)-1].Run != xs[n-1].ID {
					t.Errorf("%s: labels %+v do not end with the newest run %s", name, ls, xs[n-1].ID)
					continue
				}
				if n > 1 && ls[0].Run != xs[0].ID {
					t.Errorf("%s: first label names %s, want the oldest run %s", name, ls[0].Run, xs[0].ID)
				}
				seen := map[string]bool{}
				prevHi := -1e9
				for i, l := range ls {
					if seen[l.Label] {
						t.Errorf("%s: label %q twice", name, l.Label)
					}
					seen[l.Label] = true
					w := float64(len(l.Label)) * labelChar
					lo := map[string]float64{"start": l.X, "end": l.X - w, "middle": l.X - w/2}[l.Anchor]
					if lo < 0 || lo+w > width {
						t.Errorf("%s: label %d %q spans %.1f..%.1f, outside the chart", name, i, l.Label, lo, lo+w)
					}
					if lo < prevHi+labelGap {
						t.Errorf("%s: label %d %q starts at %.1f, %.1f after the previous one ends", name, i, l.Label, lo, lo-prevHi)
					}
					prevHi = lo + w
				}
				// As many as fit: the plot width holds no more than
				// ~plot/(w+gap) labels, and the thinning must not fall far
				// below that.
				w := float64(len(ls[0].Label))*labelChar + labelGap
				if room := int((c.Right - c.Left) / w); n >= room && len(ls) < room/2 {
					t.Errorf("%s: %d labels where about %d fit", name, len(ls), room)
				}
			}
		}
	}
}
