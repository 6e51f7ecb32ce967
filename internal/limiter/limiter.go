package limiter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

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

// Options tune a Semaphore; zero values take the defaults.
type Options struct {
	// Lease is how long a slot outlives its holder's last heartbeat; the
	// holder renews it every Lease/3. A dead holder's slot is free again at
	// most Lease after its death.
	Lease time.Duration
	// WaiterLease is how long a queued ticket outlives its waiter's last
	// poll; a dead waiter stops blocking the queue after at most this long.
	WaiterLease time.Duration
	// Fleet, when not nil, is the fleet-wide cap this source cluster's
	// requests count against too (APMTEL_FLEET_CONCURRENCY): a request then
	// holds a slot of its cluster and one of the fleet. Nil: the cluster's
	// own cap alone, exactly as a single-cluster deployment has it.
	Fleet *Fleet
}

// Semaphore is a cluster-wide, first-come-first-served counting semaphore.
type Semaphore struct {
	rdb   redis.UniversalClient
	keys  []string
	wake  string
	limit int
	opt   Options
	fleet *Fleet
	// poll bounds a waiter's fallback poll interval (minPoll, maxPoll; tests
	// lengthen them to show that wake-ups alone hand slots out).
	pollMin, pollMax time.Duration

	// offset is Redis time minus this process's clock (µs), learnt from the
	// acquire script's answers; InTaskOrder places tasks with it.
	offset      atomic.Int64
	offsetKnown atomic.Bool

	w *waker
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
		limit: limit, opt: opt, fleet: opt.Fleet, pollMin: minPoll, pollMax: maxPoll, w: newWaker(rdb, ks.SearchWake())}
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

// Close ends the wake-up subscription (not the Fleet's: its owner closes
// it). Waiters still polling go on polling.
func (s *Semaphore) Close() error { return s.w.close() }

// wakeups returns the channel closed at the next announced release of this
// cluster's slots.
func (s *Semaphore) wakeups() <-chan struct{} { return s.w.wakeups() }

// keep is how long the limiter's keys outlive their last change.
func (s *Semaphore) keep() int64 { return 2 * max(s.opt.Lease, s.opt.WaiterLease).Milliseconds() }

// Poll intervals of a waiter (see Acquire).
const (
	minPoll = 5 * time.Millisecond
	maxPoll = 100 * time.Millisecond
)

// Acquire waits for a slot until ctx ends. It returns a context derived from
// ctx that is cancelled (cause ErrLeaseLost) if the slot's lease cannot be
// renewed, and the release function, which must be called once.
func (s *Semaphore) Acquire(ctx context.Context) (context.Context, func(), error) {
	began := time.Now()
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
	lease, wlease := s.opt.Lease.Milliseconds(), s.opt.WaiterLease.Milliseconds()
	// inFleet: the ticket waits in the fleet's queue (its cluster had a slot
	// for it, the fleet had none).
	inFleet := false
	// queuedAt: when the ticket's waiter lease in its cluster's queue was
	// last renewed, while it waits for the fleet.
	var queuedAt time.Time
	giveUp := func(err error) (context.Context, func(), error) {
		s.leave(ctx, ticket)
		if inFleet {
			s.fleet.leave(ctx, ticket)
		}
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("waiting for a search slot: %w", context.Cause(ctx))
		}
		return nil, nil, fmt.Errorf("search slot: %w", err)
	}
	// handed: closed when a release hands this ticket its slot (see
	// leaveScript); the fleet's two steps are never handed on.
	var handed <-chan struct{}
	if s.fleet == nil {
		handed = s.w.watch(ticket)
		defer s.w.unwatch(ticket)
	}
	wait := s.pollMin
	for {
		// Taken before the scripts run, so a release between a script and
		// the wait is not missed.
		woken := s.wakeups()
		var fleetWoken <-chan struct{}
		if s.fleet != nil {
			fleetWoken = s.fleet.w.wakeups()
		}
		sent := time.Now()
		if inFleet {
			// Waiting for the fleet: ask it alone whether the turn has come
			// (one round trip, nothing taken) before taking the cluster's slot.
			fres, err := acquireScript.Run(ctx, s.rdb, s.fleet.keys, s.fleet.limit, ticket, lease, wlease, place, "peek").Int64Slice()
			if err == nil && len(fres) != 3 {
				err = fmt.Errorf("fleet acquire script answered %v", fres)
			}
			if err != nil {
				return giveUp(err)
			}
			if fres[0] == 0 {
				if time.Since(queuedAt) > s.opt.WaiterLease/3 {
					// Keep the ticket's place in its cluster's queue alive
					// too (a peek there takes nothing either).
					if err := acquireScript.Run(ctx, s.rdb, s.keys, s.limit, ticket, lease, wlease, place, "peek").Err(); err != nil {
						return giveUp(err)
					}
					queuedAt = time.Now()
				}
				if wait, _, err = s.sleep(ctx, fleetWoken, s.fleet.w.wakeups, nil, fres[1], s.fleet.limit, wait); err != nil {
					return giveUp(err)
				}
				continue
			}
			sent = time.Now()
		}
		res, err := acquireScript.Run(ctx, s.rdb, s.keys, s.limit, ticket, lease, wlease, place).Int64Slice()
		if err == nil && len(res) != 3 {
			err = fmt.Errorf("acquire script answered %v", res)
		}
		if err != nil {
			return giveUp(err)
		}
		if place == 0 {
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
		ahead, limit, next := res[1], s.limit, s.wakeups
		switch {
		case res[0] == 1 && s.fleet == nil:
			record(ctx, time.Since(began))
			return s.hold(ctx, ticket, sent, s.opt.Lease)
		case res[0] == 1:
			// The cluster's slot is taken; now the fleet's, in the same
			// place. Never held while waiting: if the fleet has none, the
			// cluster's slot goes back at once.
			fres, err := acquireScript.Run(ctx, s.rdb, s.fleet.keys, s.fleet.limit, ticket, lease, wlease, place).Int64Slice()
			if err == nil && len(fres) != 3 {
				err = fmt.Errorf("fleet acquire script answered %v", fres)
			}
			if err != nil {
				inFleet = true
				return giveUp(err)
			}
			if fres[0] == 1 {
				record(ctx, time.Since(began))
				return s.hold(ctx, ticket, sent, s.opt.Lease)
			}
			inFleet = true
			if err := requeueScript.Run(ctx, s.rdb, s.keys, ticket, place, wlease, s.keep(), s.wake).Err(); err != nil {
				return giveUp(err)
			}
			queuedAt = time.Now()
			ahead, limit, next = fres[1], s.fleet.limit, s.fleet.w.wakeups
			woken = fleetWoken
		case inFleet:
			// A ticket of this cluster with an older place came first: this
			// one waits for its cluster again and must not block the fleet.
			s.fleet.leave(ctx, ticket)
			inFleet = false
		}
		var got bool
		if wait, got, err = s.sleep(ctx, woken, next, handed, ahead, limit, wait); err != nil {
			return giveUp(err)
		}
		if got {
			// The slot's lease was set after this ticket's last call was
			// sent: the lease clock starts there, on the safe side.
			record(ctx, time.Since(began))
			return s.hold(ctx, ticket, sent, s.opt.WaiterLease)
		}
	}
}

// sleep waits until the ticket's turn should have come: ahead announced
// releases on woken (next gives the channel of the following one), or the
// fallback poll, whichever first; or until a release hands it its slot
// (handed closed: got); or ctx's end (the error). The poll is the fallback
// (expired leases announce nothing, and pub/sub may be down): fast when
// the turn is near, slower when many tickets are ahead, so hundreds of
// queued requests do not flood Redis. It returns the next poll interval.
func (s *Semaphore) sleep(ctx context.Context, woken <-chan struct{}, next func() <-chan struct{}, handed <-chan struct{}, ahead int64, limit int, wait time.Duration) (_ time.Duration, got bool, _ error) {
	if ahead <= int64(limit) {
		wait = s.pollMin
	} else {
		wait = min(2*wait, s.pollMax)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return wait, false, ctx.Err()
		case <-handed:
			return wait, true, nil
		case <-t.C:
			return wait, false, nil
		case <-woken:
			// Each announced release moves every waiter one place up.
			if ahead--; ahead <= 0 {
				return wait, false, nil
			}
			woken = next()
		}
	}
}

// hold starts the heartbeat of a taken slot (and fleet slot) whose lease,
// first long, was set by a call sent at sent.
//
// The holder keeps its own clock of the lease: it ends, at the latest, one
// lease after the last successful renewal was sent (Redis set it later), and
// the holder gives the slot up a margin before that (leaseMargin). A process
// that was stopped (SIGSTOP, a paused VM, a long stall) wakes with that
// deadline passed and cancels its request at once, without asking Redis:
// its slot may already serve someone else, and closing the request's
// connection makes the source cancel the search.
func (s *Semaphore) hold(ctx context.Context, ticket string, sent time.Time, first time.Duration) (context.Context, func(), error) {
	hctx, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		every := s.opt.Lease / 3
		margin := s.leaseMargin()
		deadline := sent.Add(first - first/6)
		expire := time.NewTimer(time.Until(deadline))
		defer expire.Stop()
		// Renew every third of a lease, and half a third before the
		// deadline at the latest: a handed slot's first lease (what was left
		// of its waiter's) may be shorter than a full one.
		next := func() time.Duration { return max(0, min(every, time.Until(deadline)-every/2)) }
		t := time.NewTimer(next())
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
			ok, err := s.renew(rctx, ticket)
			rcancel()
			switch {
			case err == nil && ok:
				deadline = sent.Add(s.opt.Lease - margin)
				expire.Reset(time.Until(deadline))
				t.Reset(next())
				lastErr = nil
			case err == nil:
				cancel(ErrLeaseLost)
				return
			default:
				// Redis unreachable: the deadline timer ends the request if
				// no later renewal gets through.
				lastErr = err
				t.Reset(every)
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
		if s.fleet != nil {
			s.fleet.leave(ctx, ticket)
		}
	}, nil
}

// renew extends the ticket's leases: its cluster's slot, then its fleet
// slot. ok is false when either was lost.
func (s *Semaphore) renew(ctx context.Context, ticket string) (ok bool, err error) {
	n, err := renewScript.Run(ctx, s.rdb, s.keys[:1], ticket, s.opt.Lease.Milliseconds()).Int()
	if err != nil || n != 1 || s.fleet == nil {
		return n == 1, err
	}
	n, err = renewScript.Run(ctx, s.rdb, s.fleet.keys[:1], ticket, s.opt.Lease.Milliseconds()).Int()
	return n == 1, err
}

// leaseMargin is how long before its lease's end a holder that could not
// renew gives its slot up: a sixth of a lease, so that clocks running a
// little apart (this process's and Redis's) never let two holders overlap.
func (s *Semaphore) leaseMargin() time.Duration { return s.opt.Lease / 6 }

// leave gives the ticket's slot or place in its cluster's queue back, hands
// the slot on and announces it (one script).
func (s *Semaphore) leave(ctx context.Context, ticket string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	limit := s.limit
	if s.fleet != nil {
		limit = 0 // a ticket handed a cluster slot would still need the fleet's
	}
	_ = leaveScript.Run(ctx, s.rdb, s.keys, ticket, s.wake, limit, s.opt.Lease.Milliseconds(), s.keep()).Err()
}

// Gate has the signature of es.ClientParams.Gate: the client takes a slot
// around every attempt of a request, so retries count against the cap and a
// backoff wait holds no slot.
func (s *Semaphore) Gate(ctx context.Context) (context.Context, func(), error) {
	return s.Acquire(ctx)
}
