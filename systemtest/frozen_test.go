package systemtest

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/faultproxy"
	"github.com/apmtel/apmtel/internal/limiter"
)

// A worker holding both slots of cap 2 is frozen (SIGSTOP) for 12 s while
// its requests hang at the source. A frozen process cannot close its
// requests nor renew its leases, so once the leases run out another worker
// takes the slots: the source sees at most cap + the frozen worker's
// requests, from about one lease into the freeze until the worker is
// resumed, when its own lease clock cancels those requests at once
// (issue 24, item 3: 4 at once and no end stated before).
func TestFaultFrozenWorkerOverCapBound(t *testing.T) {
	t.Parallel()
	const limit, freeze = 2, 12 * time.Second
	p, purl := startProxy(t)
	s := newStack(t)
	s.loadFixture(t)
	env := s.env(t, purl, "APMTEL_CONCURRENCY=4", fmt.Sprint("APMTEL_SEARCH_CONCURRENCY=", limit))
	a := s.Start("worker-a", env, "worker")
	resume := sync.OnceFunc(func() { _ = a.Cmd.Process.Signal(syscall.SIGCONT) })
	t.Cleanup(resume) // before the stack's SIGTERM: a stopped process never exits
	p.SetFault(faultproxy.Fault{Mode: "hang", Match: "task="})
	startRun(t, env)
	s.waitInFlight(t, p, limit)

	// Sample the source's requests in flight every 2 ms.
	type sample struct {
		at time.Time
		n  int
	}
	var (
		mu      sync.Mutex
		samples []sample
	)
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			n := p.Stats().InFlight
			mu.Lock()
			samples = append(samples, sample{time.Now(), n})
			mu.Unlock()
			select {
			case <-stopSampling:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()

	if err := a.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	s.Start("worker-b", env, "worker")
	time.Sleep(freeze)
	resumed := time.Now()
	resume()
	s.Eventually(5*time.Second, "the frozen worker's requests closed", func() bool { return p.Stats().InFlight <= limit })
	time.Sleep(500 * time.Millisecond) // and they stay closed
	close(stopSampling)
	<-sampled
	p.SetFault(faultproxy.Fault{Mode: "none"})

	// first: the first sample over the cap; back: the first sample within
	// the cap after SIGCONT, and no sample over it after that.
	var first, back time.Time
	peak := 0
	for _, sm := range samples {
		peak = max(peak, sm.n)
		switch {
		case sm.n > limit && first.IsZero():
			first = sm.at
		case sm.n > limit && !back.IsZero():
			t.Errorf("over the cap again %s after SIGCONT", sm.at.Sub(resumed))
		case sm.n <= limit && back.IsZero() && sm.at.After(resumed):
			back = sm.at
		}
	}
	if first.IsZero() {
		t.Fatalf("never over the cap during a %s freeze (peak %d): the test did not freeze a holder", freeze, peak)
	}
	if back.IsZero() {
		t.Fatal("no sample after SIGCONT")
	}
	overFrom, overUntil := first.Sub(stopped), back.Sub(resumed)
	// The bound: cap + the frozen worker's requests (all it held: limit),
	// not before its lease could have run out (last renewal up to a third
	// of a lease before the stop), and not past the freeze.
	lease := limiter.DefaultLease
	if peak > 2*limit {
		t.Errorf("peak %d in flight, want at most cap + the frozen worker's %d", peak, limit)
	}
	if overFrom < lease-lease/3-lease/6 {
		t.Errorf("over the cap %s into the freeze, before the frozen worker's leases could end (%s)", overFrom, lease-lease/3-lease/6)
	}
	if overUntil > time.Second {
		t.Errorf("still over the cap %s after the worker was resumed, want its requests cancelled at once", overUntil)
	}
	t.Logf("peak %d; over the cap from %s into the freeze until %s after SIGCONT", peak, overFrom.Round(10*time.Millisecond), overUntil.Round(time.Millisecond))
	fmt.Fprintf(os.Stderr, "MEASURE frozen worker (cap %d, SIGSTOP %s): peak %d in flight, over the cap from %s into the freeze to %s after SIGCONT\n",
		limit, freeze, peak, overFrom.Round(10*time.Millisecond), overUntil.Round(time.Millisecond))
}
