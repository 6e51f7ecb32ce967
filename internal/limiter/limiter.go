package limiter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/keys"
)

// Defaults of Options.
const (
	DefaultLease       = 5 * time.Second
	DefaultWaiterLease = 3 * time.Second
)

// ErrLeaseLost is the cause of a held slot's context when its lease could
// not be renewed in time (Redis unreachable, process stalled): the slot may
// already serve someone else, so the request must stop.
var ErrLeaseLost = errors.New("search slot lease lost")

// acquireScript queues a ticket and hands it a slot when its turn has come.
//
// KEYS[1] holders: sorted set, member ticket, score lease expiry (ms)
// KEYS[2] queue: sorted set, member ticket, score arrival time (µs)
// KEYS[3] waiters: sorted set, member ticket, score waiter lease expiry (ms)
// ARGV[1] limit, ARGV[2] ticket, ARGV[3] holder lease (ms), ARGV[4] waiter lease (ms),
// ARGV[5] (optional) the ticket's place in the queue (µs, Redis time), 0 or absent for now
// Result: {1, 0, q} when the ticket now holds a slot; {0, n, q} while it
// waits, n >= 1 being how many slots must free up before its turn; q is the
// ticket's queue score (ARGV[5], or now on its first call).
//
// Expired holders and waiters are dropped first. A ticket takes a slot only
// when fewer tickets are ahead of it in the queue than there are free slots,
// so the slots go out strictly in arrival order (no starvation) and every
// ticket ahead still finds its own. Time comes from Redis, so the workers'
// clocks do not matter. Calling it again for a holder answers {1, 0}.
var acquireScript = redis.NewScript(`
local t = redis.call('TIME')
local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(us / 1000)
local limit, ticket = tonumber(ARGV[1]), ARGV[2]
local lease, wlease = tonumber(ARGV[3]), tonumber(ARGV[4])
local q = tonumber(ARGV[5] or '0') or 0
if q <= 0 then q = us end
if redis.call('ZSCORE', KEYS[1], ticket) then
  return {1, 0, q}
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, d in ipairs(dead) do
  redis.call('ZREM', KEYS[2], d)
end
if #dead > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
end
local queued = redis.call('ZSCORE', KEYS[2], ticket)
if queued then
  q = tonumber(queued)
else
  redis.call('ZADD', KEYS[2], q, ticket)
end
local keep = 2 * math.max(lease, wlease)
local rank = redis.call('ZRANK', KEYS[2], ticket)
local free = limit - redis.call('ZCARD', KEYS[1])
if rank < free then
  redis.call('ZREM', KEYS[2], ticket)
  redis.call('ZREM', KEYS[3], ticket)
  redis.call('ZADD', KEYS[1], now + lease, ticket)
  redis.call('PEXPIRE', KEYS[1], keep)
  return {1, 0, q}
end
redis.call('ZADD', KEYS[3], now + wlease, ticket)
redis.call('PEXPIRE', KEYS[2], keep)
redis.call('PEXPIRE', KEYS[3], keep)
return {0, rank - math.max(free, 0) + 1, q}
`)

// renewScript extends a held slot's lease (the heartbeat).
//
// KEYS[1] holders (as in acquireScript)
// ARGV[1] ticket, ARGV[2] lease (ms)
// Result: 1 when renewed, 0 when the ticket no longer holds a slot (its
// lease ran out and it was dropped).
var renewScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local exp = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not exp or tonumber(exp) <= now then
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
return 1
`)

// leaveScript gives a slot back, or takes a ticket out of the queue when its
// waiter gives up.
//
// KEYS[1] holders, KEYS[2] queue, KEYS[3] waiters (as in acquireScript)
// ARGV[1] ticket
// Result: the number of sets the ticket was removed from (0 or 1).
var leaveScript = redis.NewScript(`
return redis.call('ZREM', KEYS[1], ARGV[1]) + redis.call('ZREM', KEYS[2], ARGV[1]) + redis.call('ZREM', KEYS[3], ARGV[1])
`)

// Options tune a Semaphore; zero values take the defaults.
type Options struct {
	// Lease is how long a slot outlives its holder's last heartbeat; the
	// holder renews it every Lease/3. A dead holder's slot is free again at
	// most Lease after its death.
	Lease time.Duration
	// WaiterLease is how long a queued ticket outlives its waiter's last
	// poll; a dead waiter stops blocking the queue after at most this long.
	WaiterLease time.Duration
}

// Semaphore is a cluster-wide, first-come-first-served counting semaphore.
type Semaphore struct {
	rdb   redis.UniversalClient
	keys  []string
	wake  string
	limit int
	opt   Options
	// poll bounds a waiter's fallback poll interval (minPoll, maxPoll; tests
	// lengthen them to show that wake-ups alone hand slots out).
	pollMin, pollMax time.Duration

	// offset is Redis time minus this process's clock (µs), learnt from the
	// acquire script's answers; InTaskOrder places tasks with it.
	offset      atomic.Int64
	offsetKnown atomic.Bool

	// Wake-ups: one subscription per Semaphore, started by the first waiter;
	// every message closes cur and replaces it, waking all local waiters.
	subOnce sync.Once
	mu      sync.Mutex
	cur     chan struct{}
	closed  bool
	sub     *redis.PubSub
}

// New returns a semaphore of limit slots in the key space ks.
func New(rdb redis.UniversalClient, ks keys.Space, limit int, opt Options) *Semaphore {
	if opt.Lease <= 0 {
		opt.Lease = DefaultLease
	}
	if opt.WaiterLease <= 0 {
		opt.WaiterLease = DefaultWaiterLease
	}
	return &Semaphore{rdb: rdb, keys: []string{ks.SearchSlots(), ks.SearchQueue(), ks.SearchWaiters()}, wake: ks.SearchWake(),
		limit: limit, opt: opt, pollMin: minPoll, pollMax: maxPoll, cur: make(chan struct{})}
}

type orderKey struct{}

// taskOrder is a task's place in the queue: when the task started, on this
// process's clock, and once known, the same instant in Redis time.
type taskOrder struct {
	start time.Time
	place atomic.Int64
}

// InTaskOrder returns a context whose requests queue for a slot at the
// moment the task started (now) rather than each at its own arrival:
// oldest task first. A task whose requests depend on each other (page after
// page, a query built from the previous answer) would otherwise send each
// next request to the back of a queue of every other task's fan-out, and
// the run would wait for its longest chain times the queue's length; and a
// task's first request, sent a few ms after the task began, would land in
// the middle of the flood of requests all tasks send at once. Still no
// starvation: a ticket can only be passed by tickets of tasks that started
// before it, and those are finitely many. Requests without it keep first
// come, first served.
func InTaskOrder(ctx context.Context) context.Context {
	return context.WithValue(ctx, orderKey{}, &taskOrder{start: time.Now()})
}

// Close ends the wake-up subscription. Waiters still polling go on polling.
func (s *Semaphore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.sub != nil {
		return s.sub.Close()
	}
	return nil
}

// wakeups returns the channel closed at the next announced release, and
// subscribes on first use. Until the subscription stands (or when Redis
// pub/sub is unavailable) waiters fall back to polling alone.
func (s *Semaphore) wakeups() <-chan struct{} {
	s.subOnce.Do(func() {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		s.sub = s.rdb.Subscribe(context.Background(), s.wake)
		ch := s.sub.Channel() // re-subscribes by itself after a reconnect
		s.mu.Unlock()
		go func() {
			for range ch {
				s.mu.Lock()
				close(s.cur)
				s.cur = make(chan struct{})
				s.mu.Unlock()
			}
		}()
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// announce tells every waiter of every process that a slot or a place in
// the queue came free.
func (s *Semaphore) announce(ctx context.Context) {
	_ = s.rdb.Publish(ctx, s.wake, "").Err()
}

// RecoveryBound is the longest a dead process's slots stay taken: one lease
// after its last heartbeat, plus one poll of the next waiter.
func (s *Semaphore) RecoveryBound() time.Duration { return s.opt.Lease + maxPoll }

// Poll intervals of a waiter (see Acquire).
const (
	minPoll = 5 * time.Millisecond
	maxPoll = 100 * time.Millisecond
)

// Acquire waits for a slot until ctx ends. It returns a context derived from
// ctx that is cancelled (cause ErrLeaseLost) if the slot's lease cannot be
// renewed, and the release function, which must be called once.
func (s *Semaphore) Acquire(ctx context.Context) (context.Context, func(), error) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	ticket := hex.EncodeToString(b[:])
	order, _ := ctx.Value(orderKey{}).(*taskOrder)
	var place int64
	if order != nil {
		if place = order.place.Load(); place == 0 && s.offsetKnown.Load() {
			// Redis time of the task's start: this process's clock, corrected
			// by its measured offset to Redis, so workers' clocks do not matter.
			place = order.start.UnixMicro() + s.offset.Load()
			order.place.CompareAndSwap(0, place)
		}
	}
	wait := s.pollMin
	for {
		// Taken before the script runs, so a release between the script
		// and the wait is not missed.
		woken := s.wakeups()
		sent := time.Now()
		res, err := acquireScript.Run(ctx, s.rdb, s.keys, s.limit, ticket, s.opt.Lease.Milliseconds(), s.opt.WaiterLease.Milliseconds(), place).Int64Slice()
		if err != nil {
			s.leave(ctx, ticket)
			if ctx.Err() != nil {
				return nil, nil, fmt.Errorf("waiting for a search slot: %w", context.Cause(ctx))
			}
			return nil, nil, fmt.Errorf("search slot: %w", err)
		}
		if len(res) == 3 && place == 0 {
			// The script stamped the ticket with Redis's now: learn this
			// process's offset to Redis time (midpoint of the round trip).
			mid := sent.Add(time.Since(sent) / 2)
			s.offset.Store(res[2] - mid.UnixMicro())
			s.offsetKnown.Store(true)
			if order != nil {
				order.place.CompareAndSwap(0, res[2])
			}
			// Later polls of this ticket answer its old stamp, not Redis's
			// now: they must not teach the offset again.
			place = res[2]
		}
		if len(res) == 3 && res[0] == 1 {
			return s.hold(ctx, ticket, sent)
		}
		ahead := int64(1)
		if len(res) == 3 {
			ahead = res[1]
		}
		// The poll is the fallback (expired leases announce nothing, and
		// pub/sub may be down): fast when the turn is near, slower when many
		// tickets are ahead, so hundreds of queued requests do not flood Redis.
		if ahead <= int64(s.limit) {
			wait = s.pollMin
		} else {
			wait = min(2*wait, s.pollMax)
		}
		// Each announced release moves every waiter one place up; try again
		// when this ticket's turn should have come.
		t := time.NewTimer(wait)
	sleep:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				s.leave(ctx, ticket)
				return nil, nil, fmt.Errorf("waiting for a search slot: %w", context.Cause(ctx))
			case <-t.C:
				break sleep
			case <-woken:
				if ahead--; ahead <= 0 {
					t.Stop()
					break sleep
				}
				woken = s.wakeups()
			}
		}
	}
}

// hold starts the heartbeat of a taken slot whose lease was set by a call
// sent at sent.
//
// The holder keeps its own clock of the lease: it ends, at the latest, one
// lease after the last successful renewal was sent (Redis set it later), and
// the holder gives the slot up a margin before that (leaseMargin). A process
// that was stopped (SIGSTOP, a paused VM, a long stall) wakes with that
// deadline passed and cancels its request at once, without asking Redis:
// its slot may already serve someone else, and closing the request's
// connection makes the source cancel the search.
func (s *Semaphore) hold(ctx context.Context, ticket string, sent time.Time) (context.Context, func(), error) {
	hctx, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		every := s.opt.Lease / 3
		margin := s.leaseMargin()
		deadline := sent.Add(s.opt.Lease - margin)
		expire := time.NewTimer(time.Until(deadline))
		defer expire.Stop()
		t := time.NewTicker(every)
		defer t.Stop()
		var lastErr error
		lost := func() {
			if lastErr != nil {
				cancel(fmt.Errorf("%w: not renewed within %s: %v", ErrLeaseLost, s.opt.Lease-margin, lastErr))
				return
			}
			cancel(fmt.Errorf("%w: not renewed within %s (process stalled)", ErrLeaseLost, s.opt.Lease-margin))
		}
		for {
			select {
			case <-stop:
				return
			case <-hctx.Done():
				return
			case <-expire.C:
				lost()
				return
			case <-t.C:
			}
			// Both timers are due at once after a stall: the deadline wins
			// whichever fires first.
			if !time.Now().Before(deadline) {
				lost()
				return
			}
			sent := time.Now()
			until := sent.Add(every)
			if deadline.Before(until) {
				until = deadline
			}
			rctx, rcancel := context.WithDeadline(context.WithoutCancel(ctx), until)
			ok, err := renewScript.Run(rctx, s.rdb, s.keys[:1], ticket, s.opt.Lease.Milliseconds()).Int()
			rcancel()
			switch {
			case err == nil && ok == 1:
				deadline = sent.Add(s.opt.Lease - margin)
				expire.Reset(time.Until(deadline))
				lastErr = nil
			case err == nil:
				cancel(ErrLeaseLost)
				return
			default:
				// Redis unreachable: the deadline timer ends the request if
				// no later renewal gets through.
				lastErr = err
			}
		}
	}()
	released := false
	return hctx, func() {
		if released {
			return
		}
		released = true
		close(stop)
		<-done
		cancel(context.Canceled)
		s.leave(ctx, ticket)
	}, nil
}

// leaseMargin is how long before its lease's end a holder that could not
// renew gives its slot up: a sixth of a lease, so that clocks running a
// little apart (this process's and Redis's) never let two holders overlap.
func (s *Semaphore) leaseMargin() time.Duration { return s.opt.Lease / 6 }

func (s *Semaphore) leave(ctx context.Context, ticket string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if n, err := leaveScript.Run(ctx, s.rdb, s.keys, ticket).Int(); err == nil && n > 0 {
		s.announce(ctx)
	}
}

// Gate has the signature of es.ClientParams.Gate: the client takes a slot
// around every attempt of a request, so retries count against the cap and a
// backoff wait holds no slot.
func (s *Semaphore) Gate(ctx context.Context) (context.Context, func(), error) {
	return s.Acquire(ctx)
}

// Doer wraps an es.Doer so that every request holds a slot. Prefer
// es.ClientParams.Gate, which holds a slot per attempt rather than per
// request with all its retries.
func (s *Semaphore) Doer(d es.Doer) es.Doer { return limited{d, s} }

type limited struct {
	es.Doer
	s *Semaphore
}

func (l limited) Do(ctx context.Context, r es.Request) ([]byte, error) {
	ctx, release, err := l.s.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return l.Doer.Do(ctx, r)
}
