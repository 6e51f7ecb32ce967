package limiter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apmtel/apmtel/internal/es"
)

// acquireScript takes a slot if fewer than limit are held.
//
// KEYS[1] the slots sorted set (member: token, score: lease expiry in ms)
// ARGV[1] limit, ARGV[2] token, ARGV[3] lease in ms
// Result: 1 when the slot was taken, 0 when all slots are held. Expired
// leases are dropped first; time comes from Redis, so workers' clocks do not matter.
var acquireScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
  return 1
end
return 0
`)

// Semaphore is a cluster-wide counting semaphore.
type Semaphore struct {
	rdb   redis.UniversalClient
	key   string
	limit int
	lease time.Duration
}

// New returns a semaphore of limit slots under key; lease bounds how long a
// slot outlives a crashed holder.
func New(rdb redis.UniversalClient, key string, limit int, lease time.Duration) *Semaphore {
	return &Semaphore{rdb: rdb, key: key, limit: limit, lease: lease}
}

// Acquire waits for a slot until ctx ends and returns its release function.
func (s *Semaphore) Acquire(ctx context.Context) (func(), error) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	wait := 10 * time.Millisecond
	for {
		ok, err := acquireScript.Run(ctx, s.rdb, []string{s.key}, s.limit, token, s.lease.Milliseconds()).Int()
		if err != nil {
			return nil, fmt.Errorf("search slot: %w", err)
		}
		if ok == 1 {
			return func() {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				s.rdb.ZRem(ctx, s.key, token)
			}, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("waiting for a search slot: %w", ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// Doer wraps an es.Doer so that every request holds a slot.
func (s *Semaphore) Doer(d es.Doer) es.Doer { return limited{d, s} }

type limited struct {
	es.Doer
	s *Semaphore
}

func (l limited) Do(ctx context.Context, r es.Request) ([]byte, error) {
	release, err := l.s.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return l.Doer.Do(ctx, r)
}
