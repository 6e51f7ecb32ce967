package limiter

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/testenv"
)

type slowDoer struct {
	inflight, peak atomic.Int64
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
	time.Sleep(20 * time.Millisecond)
	return []byte(`{}`), nil
}

func TestLimitHoldsAcrossSemaphores(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	d := &slowDoer{}
	// Three "workers", each with its own Semaphore value on the same key.
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		doer := New(rdb, "apmtel:test:slots", 2, time.Minute).Doer(d)
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
	if n := rdb.ZCard(context.Background(), "apmtel:test:slots").Val(); n != 0 {
		t.Errorf("%d slots still held", n)
	}
}

func TestCrashedHolderLosesSlotAndWaitersStop(t *testing.T) {
	rdb, _ := testenv.RedisDB(t)
	s := New(rdb, "apmtel:test:slots", 1, 300*time.Millisecond)
	if _, err := s.Acquire(context.Background()); err != nil { // never released: a crash
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline while the slot is held, got %v", err)
	}
	start := time.Now()
	release, err := s.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	release()
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("expired lease took %s to free", el)
	}
}
