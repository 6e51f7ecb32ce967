package limiter

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/testenv"
)

// roundTrips counts the commands (and pipelines) a client sends: each is one
// round trip to Redis.
type roundTrips struct{ n atomic.Int64 }

func (c *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}
func (c *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}

// benchAcquire runs b.N acquire/release pairs, par at a time, through sems
// semaphores of limit slots on one key space, and reports Redis round trips
// per request.
func benchAcquire(b *testing.B, limit, par, sems, fleetCap int) {
	rdb, _ := testenv.RedisDB(b)
	rt := &roundTrips{}
	rdb.AddHook(rt)
	prefix := testPrefix(b)
	bks := keys.New(prefix)
	var ss []*Semaphore
	for range sems {
		var opt Options
		if fleetCap > 0 {
			opt.Fleet = NewFleet(rdb, keys.NewFleet(prefix), fleetCap)
			b.Cleanup(func() { _ = opt.Fleet.Close() })
		}
		s := New(rdb, bks, limit, opt)
		b.Cleanup(func() { _ = s.Close() })
		ss = append(ss, s)
	}
	ctx := context.Background()
	// Warm up: scripts loaded, subscriptions standing.
	for _, s := range ss {
		_, release, err := s.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		release()
	}
	rt.n.Store(0)
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for g := range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := ss[g%len(ss)]
			for next.Add(1) <= int64(b.N) {
				_, release, err := s.Acquire(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				release()
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(rt.n.Load())/float64(b.N), "roundtrips/op")
}

// One request at a time: the cost of the limiter on a request that never waits.
func BenchmarkAcquireReleaseFree(b *testing.B) { benchAcquire(b, 4, 1, 1, 0) }

// 16 requests at once from two processes through 4 slots: every request
// but the first four waits for a hand-over.
func BenchmarkAcquireReleaseContended(b *testing.B) { benchAcquire(b, 4, 16, 2, 0) }

// The free case with a fleet cap that does not bind: the price of the
// second cap (its acquire and release scripts).
func BenchmarkAcquireReleaseFleetFree(b *testing.B) { benchAcquire(b, 4, 1, 1, 100) }

// The contended case under a fleet cap of 3, below the cluster's 4: every
// request waits for the fleet.
func BenchmarkAcquireReleaseFleetContended(b *testing.B) { benchAcquire(b, 4, 16, 2, 3) }
