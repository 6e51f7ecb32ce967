package collect

import (
	"context"
	"sync"
	"time"

	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/limiter"
	"github.com/apmtel/apmtel/internal/run"
)

// Meter measures the requests of one task attempt (or errand) around the
// cluster-wide cap: how many attempts, how long each waited for a slot and
// held one, and — so a task's took splits into parts that add up — how long
// the task had requests waiting for a slot and none at the source (blocked
// by the cap alone) and how long it had at least one at the source. The
// rest of its took is its own work (encoding, decoding, merging). It costs
// a mutex and a clock read per transition: nothing next to a request.
type Meter struct {
	mu                 sync.Mutex
	now                func() time.Time
	requests           int
	wait, maxWait      time.Duration
	held               time.Duration
	waiting, inflight  int
	since              time.Time
	waitOnly, atSource time.Duration
}

// NewMeter returns a meter on the clock now (time.Now when nil).
func NewMeter(now func() time.Time) *Meter {
	if now == nil {
		now = time.Now
	}
	return &Meter{now: now}
}

// Stats is what the meter measured so far.
func (m *Meter) Stats() run.RequestStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.advance()
	return run.RequestStats{Requests: m.requests, SlotWaitMS: m.wait.Milliseconds(), SlotWaitMaxMS: m.maxWait.Milliseconds(),
		RequestMS: m.held.Milliseconds(), CapOnlyMS: m.waitOnly.Milliseconds(), AtSourceMS: m.atSource.Milliseconds()}
}

// advance books the time since the last transition. mu is held.
func (m *Meter) advance() {
	now := m.now()
	if !m.since.IsZero() {
		d := now.Sub(m.since)
		switch {
		case m.inflight > 0:
			m.atSource += d
		case m.waiting > 0:
			m.waitOnly += d
		}
	}
	m.since = now
}

func (m *Meter) move(dWaiting, dInflight int) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.advance()
	m.waiting += dWaiting
	m.inflight += dInflight
	return m.since
}

type meterKey struct{}

// WithMeter returns ctx whose requests (through a MeteredGate) report to m.
func WithMeter(ctx context.Context, m *Meter) context.Context {
	return context.WithValue(ctx, meterKey{}, m)
}

// MeteredGate wraps the source client's gate (nil: none) so that every
// attempt of a request whose context carries a Meter is measured: its wait
// for the gate and the time it holds it.
func MeteredGate(g es.Gate) es.Gate {
	return func(ctx context.Context) (context.Context, func(), error) {
		m, _ := ctx.Value(meterKey{}).(*Meter)
		if m == nil {
			if g == nil {
				return ctx, func() {}, nil
			}
			return g(ctx)
		}
		t0 := m.move(1, 0)
		gctx, release, err := ctx, func() {}, error(nil)
		if g != nil {
			gctx, release, err = g(ctx)
		}
		if err != nil {
			t1 := m.move(-1, 0)
			m.mu.Lock()
			m.wait += t1.Sub(t0)
			m.mu.Unlock()
			return nil, nil, err
		}
		t1 := m.move(-1, 1)
		m.mu.Lock()
		w := t1.Sub(t0)
		m.requests++
		m.wait += w
		m.maxWait = max(m.maxWait, w)
		m.mu.Unlock()
		var once sync.Once
		return gctx, func() {
			once.Do(func() {
				t2 := m.move(0, -1)
				m.mu.Lock()
				m.held += t2.Sub(t1)
				m.mu.Unlock()
				release()
			})
		}, nil
	}
}

// Errand runs fn, a run's work besides its tasks, as a task's requests run:
// labelled (X-Opaque-Id task=<name>), bounded by SearchTimeout, measured,
// and queued for the cap at the errand's start (oldest first, like a task),
// so its requests are not sent behind the fan-out of tasks that started
// after it. It returns the errand's entry (ok or failed).
func (x *Executor) Errand(ctx context.Context, runID, name, worker string, fn func(ctx context.Context, d es.Doer) error) run.Errand {
	start := x.now()
	e := run.Errand{Name: name, Worker: worker, StartedAt: start.UTC()}
	ctx, cancel := context.WithTimeout(ctx, x.SearchTimeout)
	defer cancel()
	m := NewMeter(x.Now)
	err := fn(limiter.InTaskOrder(WithMeter(ctx, m)), x.Doer(OpaqueID(runID, name)))
	end := x.now()
	e.FinishedAt, e.TookMS, e.RequestStats = end.UTC(), end.Sub(start).Milliseconds(), m.Stats()
	e.Status = run.TaskOK
	if err != nil {
		e.Status, e.Error = run.TaskFailed, err.Error()
	}
	return e
}
