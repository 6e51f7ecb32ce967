package limiter

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/testenv"
)

type slowDoer struct {
	inflight, peak atomic.Int64
	delay          time.Duration
}

func (d *slowDoer) Do(ctx context.Context, r es.Request) ([]byte, error) {
	n := d.inflight.Add(1)
	defer d.inflight.Add(-1)
	for {
		p := d.peak.Load()
		if n <= p || d.peak.CompareAndSwap(p, n) {
			break
		}
	}
	delay := d.delay
	if delay == 0 {
		delay = 20 * time.Millisecond
	}
	time.Sleep(delay)
	return []byte(`{}`), nil
}

// testPrefix is a key prefix of the test's own. Redis pub/sub channels are
// server-wide, not per database: tests of several packages or checkouts
// sharing one server would otherwise wake each other's waiters.
func testPrefix(t testing.TB) string {
	return fmt.Sprintf("apmtel-test-%s-%08x", t.Name(), rand.Uint32())
}

// testSpace is the key space of the default source under testPrefix.
func testSpace(t testing.TB) keys.Space { return keys.New(testPrefix(t)) }

func TestLimitHoldsAcrossSemaphores(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	ks := testSpace(t)
	d := &slowDoer{}
	// Three "workers", each with its own Semaphore value on the same keys,
	// each sending eight requests at once.
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		doer := New(rdb, ks, 2, Options{}).Doer(d)
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := doer.Do(context.Background(), es.Request{ClusterWide: true, Timeout: time.Second}); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	if p := d.peak.Load(); p != 2 {
		t.Errorf("peak concurrency %d, want 2", p)
	}
	for _, k := range []string{ks.SearchSlots(), ks.SearchQueue(), ks.SearchWaiters()} {
		if n := rdb.ZCard(context.Background(), k).Val(); n != 0 {
			t.Errorf("%s: %d tickets left", k, n)
		}
	}
}

func TestCrashedHolderLosesSlotAndWaitersStop(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	ks := testSpace(t)
	s := New(rdb, ks, 1, Options{Lease: 300 * time.Millisecond})
	// A crash: a slot is taken and its heartbeat never runs (the slot is
	// added the way acquireScript does, without hold).
	if err := acquireScript.Run(context.Background(), rdb, s.keys, 1, "dead", 300, 300).Err(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := s.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline while the slot is held, got %v", err)
	}
	if n := rdb.ZCard(context.Background(), ks.SearchQueue()).Val(); n != 0 {
		t.Errorf("a waiter that gave up left %d tickets in the queue", n)
	}
	start := time.Now()
	_, release, err := s.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	release()
	if el := time.Since(start); el > s.RecoveryBound()+time.Second {
		t.Errorf("expired lease took %s to free (bound %s)", el, s.RecoveryBound())
	}
}

// A holder that lives keeps its slot far beyond one lease: the heartbeat
// renews it, so nobody else gets in.
func TestHeartbeatKeepsSlot(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	ks := testSpace(t)
	s := New(rdb, ks, 1, Options{Lease: 300 * time.Millisecond})
	hctx, release, err := s.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second) // > 3 leases
	defer cancel()
	if _, _, err := s.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second holder got in while the first was alive: %v", err)
	}
	if hctx.Err() != nil {
		t.Fatalf("held context ended: %v", context.Cause(hctx))
	}
	release()
	if hctx.Err() == nil {
		t.Error("held context still live after release")
	}
	_, release, err = s.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	release()
}

// A holder whose slot was taken away (its lease dropped) learns it through
// its context.
func TestLostLeaseCancelsHolder(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	ks := testSpace(t)
	s := New(rdb, ks, 1, Options{Lease: 300 * time.Millisecond})
	hctx, release, err := s.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	rdb.Del(context.Background(), ks.SearchSlots())
	select {
	case <-hctx.Done():
		if !errors.Is(context.Cause(hctx), ErrLeaseLost) {
			t.Errorf("cause %v", context.Cause(hctx))
		}
	case <-time.After(2 * time.Second):
		t.Fatal("holder not told that its lease was lost")
	}
}

// Slots go out in arrival order: with one slot, tickets queued one after
// another are served in that order.
func TestFirstComeFirstServed(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	ks := testSpace(t)
	s := New(rdb, ks, 1, Options{})
	_, release, err := s.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, rel, err := s.Acquire(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
			rel()
		}()
		// Wait until waiter i has its ticket before starting the next.
		eventually(t, 5*time.Second, "ticket queued", func() bool {
			return rdb.ZCard(context.Background(), ks.SearchQueue()).Val() == int64(i+1)
		})
	}
	release()
	wg.Wait()
	for i, got := range order {
		if got != i {
			t.Fatalf("served in order %v, want 0..5", order)
		}
	}
}

// A dead waiter at the head of the queue blocks the others at most one
// waiter lease.
func TestDeadWaiterLeavesQueue(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	ks := testSpace(t)
	s := New(rdb, ks, 1, Options{WaiterLease: 300 * time.Millisecond})
	_, release, err := s.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// A waiter queues once and never polls again.
	if err := acquireScript.Run(context.Background(), rdb, s.keys, 1, "dead-waiter", 5000, 300).Err(); err != nil {
		t.Fatal(err)
	}
	release()
	start := time.Now()
	_, release, err = s.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	release()
	if el := time.Since(start); el < 200*time.Millisecond || el > 2*time.Second {
		t.Errorf("waited %s behind a dead waiter, want about its 300ms lease", el)
	}
}

// Under heavy fan-out (many goroutines per process, several processes) every
// request is served and the cap holds.
func TestFanOutNoStarvation(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	ks := testSpace(t)
	d := &slowDoer{delay: 5 * time.Millisecond}
	var wg sync.WaitGroup
	var served atomic.Int64
	for w := 0; w < 4; w++ {
		fanOut(t, &wg, New(rdb, ks, 3, Options{}).Doer(d), 40, 30*time.Second, &served)
	}
	wg.Wait()
	if served.Load() != 160 || d.peak.Load() != 3 {
		t.Errorf("served %d of 160, peak %d (cap 3)", served.Load(), d.peak.Load())
	}
}

// fanOut sends n requests at once through d, each with its own timeout,
// and counts those served.
func fanOut(t *testing.T, wg *sync.WaitGroup, d es.Doer, n int, timeout time.Duration, served *atomic.Int64) {
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			if _, err := d.Do(ctx, es.Request{ClusterWide: true, Timeout: time.Second}); err != nil {
				t.Error(err)
				return
			}
			served.Add(1)
		}()
	}
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A released slot is announced: with the fallback poll set to an hour,
// forty requests through one slot still all complete,
// handed on by the wake-ups alone. Without them this test would wait an hour
// for the second request (and fail at its context's deadline).
func TestReleaseWakesTheNextWaiter(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	wks := testSpace(t)
	var sems []*Semaphore
	for w := 0; w < 2; w++ {
		s := New(rdb, wks, 1, Options{})
		s.pollMin, s.pollMax = time.Hour, time.Hour
		t.Cleanup(func() { _ = s.Close() })
		sems = append(sems, s)
	}
	// Subscribe before the first release, as a running worker has long done.
	for _, s := range sems {
		s.wakeups()
	}
	testenv.Eventually(t, 5*time.Second, "both semaphores subscribed", func() bool {
		n, err := rdb.PubSubNumSub(context.Background(), wks.SearchWake()).Result()
		return err == nil && n[wks.SearchWake()] == 2
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d := &slowDoer{delay: 2 * time.Millisecond}
	var wg sync.WaitGroup
	var done atomic.Int64
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := sems[i%2].Doer(d).Do(ctx, es.Request{ClusterWide: true, Timeout: time.Second}); err != nil {
				t.Error(err)
				return
			}
			done.Add(1)
		}()
	}
	wg.Wait()
	if n := done.Load(); n != 40 {
		t.Fatalf("%d of 40 requests done", n)
	}
	if p := d.peak.Load(); p != 1 {
		t.Errorf("peak concurrency %d, want 1", p)
	}
}

// A task's next request queues at its task's place, ahead of the fan-out of
// tasks that started later; plain requests keep arrival order.
func TestTaskOrderPutsAChainAheadOfLaterTasks(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	oks := testSpace(t)
	s := New(rdb, oks, 1, Options{})
	t.Cleanup(func() { _ = s.Close() })
	bg := context.Background()
	taskA := InTaskOrder(bg)
	// A's first request holds the only slot; this fixes A's place.
	_, releaseA1, err := s.Acquire(taskA)
	if err != nil {
		t.Fatal(err)
	}
	o := &served{t: t, s: s, queue: oks.SearchQueue()}
	// A later task fans out three requests, and a plain request arrives.
	taskB := InTaskOrder(bg)
	for i := range 3 {
		o.send(taskB, fmt.Sprint("B", i), int64(i+1))
	}
	o.send(bg, "plain", 4)
	// A's second request (it needed the first one's answer) comes last...
	o.send(taskA, "A2", 5)
	releaseA1()
	order := o.wait()
	// ...and is served first; B's requests, which queue at B's start (before
	// the plain one arrived), come next, the plain request last.
	if len(order) != 5 || order[0] != "A2" || order[4] != "plain" {
		t.Fatalf("served in order %v, want A2 first and the plain request last", order)
	}
}

// A task that started earlier goes first even when its first request comes
// after a later task's fan-out: its place is its start, in Redis time.
func TestTaskOrderIsTheTaskStart(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	oks := testSpace(t)
	s := New(rdb, oks, 1, Options{})
	t.Cleanup(func() { _ = s.Close() })
	bg := context.Background()
	taskA := InTaskOrder(bg) // started first, sends later
	time.Sleep(20 * time.Millisecond)
	taskB := InTaskOrder(bg)
	_, releaseH, err := s.Acquire(bg) // holds the slot; teaches the offset
	if err != nil {
		t.Fatal(err)
	}
	o := &served{t: t, s: s, queue: oks.SearchQueue()}
	for i := range 3 {
		o.send(taskB, fmt.Sprint("B", i), int64(i+1))
	}
	o.send(taskA, "A", 4)
	releaseH()
	order := o.wait()
	if len(order) != 4 || order[0] != "A" {
		t.Fatalf("served in order %v, want the older task's request first", order)
	}
}

// served queues named requests on one semaphore and records the order in
// which they got their slot.
type served struct {
	t     *testing.T
	s     *Semaphore
	queue string
	mu    sync.Mutex
	order []string
	wg    sync.WaitGroup
}

// send queues one request under ctx and waits until the queue holds n tickets.
func (o *served) send(ctx context.Context, name string, n int64) {
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		_, release, err := o.s.Acquire(ctx)
		if err != nil {
			o.t.Error(err)
			return
		}
		o.mu.Lock()
		o.order = append(o.order, name)
		o.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		release()
	}()
	testenv.Eventually(o.t, 5*time.Second, name+" queued", func() bool {
		c, _ := o.s.rdb.ZCard(context.Background(), o.queue).Result()
		return c == n
	})
}

// wait returns the order in which the requests were served.
func (o *served) wait() []string { o.wg.Wait(); return o.order }

// The clock offset is learnt only from a fresh stamp: a ticket that waited
// and polled must not teach "its old stamp minus now" (Redis runs on this
// machine here, so the true offset is about zero).
func TestOffsetIgnoresAWaitingTicketsOldStamp(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	s := New(rdb, testSpace(t), 1, Options{})
	s.pollMin, s.pollMax = 20*time.Millisecond, 20*time.Millisecond
	t.Cleanup(func() { _ = s.Close() })
	_, release, err := s.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(300 * time.Millisecond); release() }()
	_, release2, err := s.Acquire(context.Background()) // waits and polls ~15 times
	if err != nil {
		t.Fatal(err)
	}
	release2()
	if off := time.Duration(s.offset.Load()) * time.Microsecond; off < -100*time.Millisecond || off > 100*time.Millisecond {
		t.Fatalf("offset to Redis time %s, want about 0 (same machine)", off)
	}
}

// stallHook holds every command while stalled is set, until the command's
// context ends: a Redis that cannot be reached, or a heartbeat that cannot run.
type stallHook struct{ stalled atomic.Bool }

func (h *stallHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *stallHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.stalled.Load() {
			<-ctx.Done()
			return ctx.Err()
		}
		return next(ctx, cmd)
	}
}
func (h *stallHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A holder that cannot renew gives its slot up on its own clock, before the
// lease runs out in Redis (where another holder could take it), not one
// renewal timeout after it.
func TestUnrenewedLeaseEndsTheRequestBeforeItExpires(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	h := &stallHook{}
	rdb.AddHook(h)
	lease := 600 * time.Millisecond
	s := New(rdb, testSpace(t), 1, Options{Lease: lease})
	t.Cleanup(func() { _ = s.Close() })
	taken := time.Now()
	hctx, release, err := s.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h.stalled.Store(true)
	select {
	case <-hctx.Done():
	case <-time.After(2 * lease):
		t.Fatal("holder still running two leases after its last renewal")
	}
	took := time.Since(taken)
	h.stalled.Store(false)
	release()
	if !errors.Is(context.Cause(hctx), ErrLeaseLost) {
		t.Errorf("cause %v, want ErrLeaseLost", context.Cause(hctx))
	}
	if took >= lease || took < lease/2 {
		t.Errorf("request ended %s after the slot was taken, want within (%s, %s): before the lease ends", took, lease/2, lease)
	}
}

// Waits adds up how long a context's requests waited for their slot.
func TestWaitsRecordsEachWait(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	s := New(rdb, testSpace(t), 1, Options{})
	t.Cleanup(func() { _ = s.Close() })
	var w Waits
	ctx := WithWaits(context.Background(), &w)
	_, release, err := s.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(150 * time.Millisecond); release() }()
	_, release2, err := s.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	release2()
	if w.Count() != 2 || w.Longest() < 140*time.Millisecond || w.Longest() > time.Second || w.Total() < w.Longest() {
		t.Errorf("waits: %d, longest %s, total %s; want 2, about 150ms", w.Count(), w.Longest(), w.Total())
	}
}

// A release hands the slot to the first queued ticket in the same script,
// with what is left of that waiter's lease, and names it in the announcement.
func TestReleaseHandsTheSlotOn(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	hks := testSpace(t)
	s := New(rdb, hks, 1, Options{})
	ctx := context.Background()
	sub := rdb.Subscribe(ctx, hks.SearchWake())
	t.Cleanup(func() { _ = sub.Close() })
	if _, err := sub.Receive(ctx); err != nil { // the subscription stands
		t.Fatal(err)
	}
	for _, ticket := range []string{"a", "b", "c"} {
		if err := acquireScript.Run(ctx, rdb, s.keys, 1, ticket, 5000, 3000).Err(); err != nil {
			t.Fatal(err)
		}
	}
	bWaiter := rdb.ZScore(ctx, hks.SearchWaiters(), "b").Val()
	n, err := leaveScript.Run(ctx, rdb, s.keys, "a", hks.SearchWake(), 1, 5000, 10000).Int()
	if err != nil || n != 1 {
		t.Fatalf("leave answered %d, %v; want 1", n, err)
	}
	holders, err := rdb.ZRangeWithScores(ctx, hks.SearchSlots(), 0, -1).Result()
	if err != nil || len(holders) != 1 || holders[0].Member != "b" || holders[0].Score != bWaiter {
		t.Errorf("holders %v, want b alone with its waiter lease %v", holders, bWaiter)
	}
	if q := rdb.ZRange(ctx, hks.SearchQueue(), 0, -1).Val(); len(q) != 1 || q[0] != "c" {
		t.Errorf("queue %v, want [c]", q)
	}
	select {
	case msg := <-sub.Channel():
		if msg.Payload != "b" {
			t.Errorf("announcement %q, want it to name b", msg.Payload)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("release not announced")
	}
	// Without a limit (a fleet's semaphore) nothing is handed on.
	if n, err := leaveScript.Run(ctx, rdb, s.keys, "b", hks.SearchWake(), 0).Int(); err != nil || n != 1 {
		t.Fatalf("leave answered %d, %v; want 1", n, err)
	}
	if c := rdb.ZCard(ctx, hks.SearchSlots()).Val(); c != 0 {
		t.Errorf("%d holders after a leave that hands nothing on", c)
	}
}

// RecoveryBound (tests) is the longest a dead process's slots stay taken: one lease
// after its last heartbeat, plus one poll of the next waiter.
func (s *Semaphore) RecoveryBound() time.Duration { return s.opt.Lease + maxPoll }

// Doer (tests) wraps an es.Doer so that every request holds a slot, with
// all its retries; processes use es.ClientParams.Gate (a slot per attempt).
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
