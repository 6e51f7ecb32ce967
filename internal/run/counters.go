package run

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Counters are the runs and uploads that ended, counted in Redis by the
// scripts that end them (seal, cancel, the upload moves), so the counts are
// exact however fast runs come and go: a run that ends and leaves the
// history between two reads is counted all the same.
type Counters struct {
	Runs    map[RunCount]int64
	Uploads map[UploadState]int64
}

// RunCount is what a run counter counts: runs of one trigger and kind that
// ended with one outcome.
type RunCount struct {
	Trigger string
	Kind    Kind
	Outcome Outcome
}

const (
	counterRuns    = "runs"
	counterUploads = "uploads"
	counterSep     = "|"
)

func runCounter(trigger string, kind Kind, o Outcome) string {
	return strings.Join([]string{counterRuns, trigger, string(kind), string(o)}, counterSep)
}

// uploadCounter is the field counting uploads that ended in s; "" when s
// does not end an upload.
func uploadCounter(s UploadState) string {
	if !s.Ended() {
		return ""
	}
	return counterUploads + counterSep + string(s)
}

// Counters reads the run and upload counters. A field it cannot read is an
// error, never a silent zero.
func (s *Store) Counters(ctx context.Context) (Counters, error) {
	m, err := s.rdb.HGetAll(ctx, s.keys.Counters()).Result()
	if err != nil {
		return Counters{}, fmt.Errorf("counters: %w", err)
	}
	c := Counters{Runs: map[RunCount]int64{}, Uploads: map[UploadState]int64{}}
	for field, v := range m {
		n, err := strconv.ParseInt(v, 10, 64)
		parts := strings.Split(field, counterSep)
		switch {
		case err != nil:
			return c, fmt.Errorf("counters: %s is %q, not a number", field, v)
		case parts[0] == counterRuns && len(parts) == 4:
			c.Runs[RunCount{Trigger: parts[1], Kind: Kind(parts[2]), Outcome: Outcome(parts[3])}] += n
		case parts[0] == counterUploads && len(parts) == 2:
			c.Uploads[UploadState(parts[1])] += n
		default:
			return c, fmt.Errorf("counters: unknown field %q", field)
		}
	}
	return c, nil
}
