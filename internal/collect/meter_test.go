package collect

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/run"
)

// Two requests through a gate of one slot, on a clock the test moves: the
// second waits 60 ms, 20 of them with nothing at the source; the figures
// split the 100 ms as the meter promises.
func TestMeteredGateSplitsWaitAndRequestTime(t *testing.T) {
	var clock atomic.Int64 // ms
	m := NewMeter(func() time.Time { return time.UnixMilli(clock.Load()) })
	entered, proceed := make(chan struct{}, 2), make(chan struct{})
	first := true
	gate := MeteredGate(func(ctx context.Context) (context.Context, func(), error) {
		if first {
			first = false
			return ctx, func() {}, nil
		}
		entered <- struct{}{}
		<-proceed
		return ctx, func() {}, nil
	})
	ctx := WithMeter(context.Background(), m)
	_, releaseA, err := gate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clock.Store(10)
	got := make(chan func(), 1)
	go func() {
		_, releaseB, err := gate(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- releaseB
	}()
	<-entered
	clock.Store(50)
	releaseA()
	releaseA() // a second call changes nothing
	clock.Store(70)
	close(proceed)
	releaseB := <-got
	clock.Store(100)
	releaseB()
	want := run.RequestStats{Requests: 2, SlotWaitMS: 60, SlotWaitMaxMS: 60, RequestMS: 80, CapOnlyMS: 20, AtSourceMS: 80}
	if st := m.Stats(); st != want {
		t.Errorf("stats\n got %+v\nwant %+v", st, want)
	}

	// A wait that ends without a slot counts as waiting, not as a request.
	m = NewMeter(func() time.Time { return time.UnixMilli(clock.Load()) })
	refused := MeteredGate(func(ctx context.Context) (context.Context, func(), error) {
		clock.Add(30)
		return nil, nil, errors.New("waiting for a search slot: context canceled")
	})
	if _, _, err := refused(WithMeter(context.Background(), m)); err == nil {
		t.Fatal("refused gate: no error")
	}
	if st := m.Stats(); st != (run.RequestStats{SlotWaitMS: 30, CapOnlyMS: 30}) {
		t.Errorf("refused wait: %+v", st)
	}

	// Without a meter in the context the gate is the wrapped one (or none).
	if c, release, err := MeteredGate(nil)(context.Background()); err != nil || c == nil || release == nil {
		t.Errorf("no gate, no meter: %v %v", c, err)
	}
}
