package limiter

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apmtel/apmtel/internal/keys"
)

// Fleet is the fleet-wide cap on requests in flight against all source
// clusters of a deployment together (APMTEL_FLEET_CONCURRENCY). One Fleet
// is shared by the Semaphores of every cluster of a process (Options.Fleet);
// its keys live in their own Redis Cluster slot (keys.Fleet).
type Fleet struct {
	rdb   redis.UniversalClient
	keys  []string
	wake  string
	limit int
	w     *waker
}

// NewFleet returns the fleet-wide cap of limit slots in the key space fk.
func NewFleet(rdb redis.UniversalClient, fk keys.Fleet, limit int) *Fleet {
	return &Fleet{rdb: rdb, keys: []string{fk.SearchSlots(), fk.SearchQueue(), fk.SearchWaiters()}, wake: fk.SearchWake(),
		limit: limit, w: newWaker(rdb, fk.SearchWake())}
}

// Close ends the fleet's wake-up subscription. The Semaphores using it
// still work (their waiters for a fleet slot poll).
func (f *Fleet) Close() error { return f.w.close() }

// leave gives the ticket's fleet slot or its place in the fleet's queue
// back, and announces it.
func (f *Fleet) leave(ctx context.Context, ticket string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = leaveScript.Run(ctx, f.rdb, f.keys, ticket, f.wake, 0).Err()
}
