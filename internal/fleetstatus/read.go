package fleetstatus

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/apmtel/apmtel/internal/backoff"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/run"
)

// Reader reads what Rows needs from Redis, for the clusters of a Set: each
// cluster's recent runs (in its own key space, keys.Space of its name) and
// its backoff state. The console's fleet page and the per-cluster metrics
// read through it, so both see the same runs.
type Reader struct {
	Redis redis.UniversalClient
	// Prefix is APMTEL_KEY_PREFIX.
	Prefix string
	// Depth is how many of a cluster's newest runs are read at most (the
	// history limit: a success older than that is gone from Redis anyway).
	Depth int
	// Parallel is how many clusters are read at once (8 when 0).
	Parallel int
}

// firstLook is how many runs are read first. A healthy cluster's newest runs
// hold both what Rows looks for beyond the newest run — its last success and
// its last scheduled run — so only a cluster whose newest runs lack one of
// them is read to Depth: a fleet page of 1,000 healthy clusters costs
// ~5,000 reads, not 1,000 × the history limit.
const firstLook = 3

// Store returns the run store of the named cluster's key space, for reading.
func (rd Reader) Store(name string) *run.Store {
	return run.NewStore(rd.Redis, keys.NewFor(rd.Prefix, name), 0, max(rd.Depth, 1))
}

// Read returns the state of each named cluster (Set.Names, or the first
// of them), keyed by name. A cluster whose runs cannot be read fails the
// whole read: a partial answer would show that cluster as one that never
// ran.
func (rd Reader) Read(ctx context.Context, names []string) (map[string]ClusterState, error) {
	out := make(map[string]ClusterState, len(names))
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	next := make(chan string)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parallel := rd.Parallel
	if parallel <= 0 {
		parallel = 8
	}
	for range min(parallel, max(len(names), 1)) {
		wg.Go(func() {
			for name := range next {
				st, err := rd.readOne(ctx, name)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("cluster %s: %w", name, err)
					cancel()
				}
				out[name] = st
				mu.Unlock()
			}
		})
	}
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		next <- name
	}
	close(next)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return out, firstErr
}

func (rd Reader) readOne(ctx context.Context, name string) (ClusterState, error) {
	space := keys.NewFor(rd.Prefix, name)
	depth := max(rd.Depth, 1)
	st := rd.Store(name)
	runs, err := st.List(ctx, min(firstLook, depth))
	if err != nil {
		return ClusterState{}, err
	}
	if len(runs) == firstLook && depth > firstLook && !settled(runs) {
		if runs, err = st.List(ctx, depth); err != nil {
			return ClusterState{}, err
		}
	}
	b, err := backoff.NewStore(rd.Redis, space, backoff.Policy{}, 0).Get(ctx)
	if err != nil {
		return ClusterState{}, err
	}
	return ClusterState{Runs: runs, Backoff: b}, nil
}

// settled says whether runs (newest first) already hold everything Rows
// reads from older runs: a successful sealed run and a scheduled one.
func settled(runs []run.Run) bool {
	var ok, scheduled bool
	for _, r := range runs {
		ok = ok || r.Status == run.StatusSealed && r.Outcome() == run.OutcomeOK
		scheduled = scheduled || strings.HasPrefix(r.ID, scheduledPrefix)
	}
	return ok && scheduled
}
