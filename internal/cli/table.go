package cli

import (
	"io"
	"text/tabwriter"
)

// newTable is the one tabwriter of the CLI's tables. tabwriter pads every
// cell but the last of a line, so an empty last column (a task's ERROR, a
// data task's behavioural mark) would leave trailing blanks that diff and
// grep users trip over; trimEOL drops them.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(&trimEOL{w: w}, 2, 4, 2, ' ', 0)
}

// trimEOL holds back blanks until it sees what follows them: text gets
// them, a newline drops them.
type trimEOL struct {
	w      io.Writer
	blanks int
	buf    []byte
}

func (t *trimEOL) Write(p []byte) (int, error) {
	t.buf = t.buf[:0]
	for _, b := range p {
		switch b {
		case ' ':
			t.blanks++
			continue
		case '\n':
		default:
			for ; t.blanks > 0; t.blanks-- {
				t.buf = append(t.buf, ' ')
			}
		}
		t.blanks = 0
		t.buf = append(t.buf, b)
	}
	if _, err := t.w.Write(t.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}
