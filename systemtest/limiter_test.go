package systemtest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/faultproxy"
	"github.com/apmtel/apmtel/internal/keys"
)

// A worker holding every search slot is SIGKILLed: its leases are no longer
// renewed, so another worker's search starts within the limiter's recovery
// bound (5 s lease + one poll), not after search timeout + 30 s as before
// (issue 10, item 5: 147 s measured).
func TestFaultDeadWorkerReleasesSearchSlots(t *testing.T) {
	t.Parallel()
	p, purl := startProxy(t)
	s := newStack(t)
	s.loadFixture(t)
	env := s.env(t, purl, "APMTEL_CONCURRENCY=4", "APMTEL_SEARCH_CONCURRENCY=4")
	a := s.Start("worker-a", env, "worker")
	p.SetFault(faultproxy.Fault{Mode: "hang", Match: "task="})
	startRun(t, env)
	s.waitInFlight(t, p, 4)
	if n := s.rdb.ZCard(context.Background(), keys.New("").SearchSlots()).Val(); n != 4 {
		t.Fatalf("%d slots held, want all 4 by worker-a", n)
	}
	before := p.Stats().Requests
	killed := time.Now()
	a.Kill()
	p.SetFault(faultproxy.Fault{Mode: "none"})
	s.Start("worker-b", env, "worker")
	s.Eventually(10*time.Second, "a search of worker-b", func() bool { return p.Stats().Requests > before })
	took := time.Since(killed)
	if st := p.Stats(); st.MaxInFlight > 4 {
		t.Errorf("max in flight %d over the cap 4", st.MaxInFlight)
	}
	t.Logf("first search of another worker %s after SIGKILL", took.Round(10*time.Millisecond))
	fmt.Fprintf(os.Stderr, "MEASURE dead worker's search slots back after: %s\n", took.Round(10*time.Millisecond))
}
