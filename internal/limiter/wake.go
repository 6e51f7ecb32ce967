package limiter

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// waker turns the announcements on one pub/sub channel into wake-ups of this
// process's waiters: one subscription, started by the first waiter; every
// message closes cur and replaces it, waking every waiter at once.
type waker struct {
	rdb     redis.UniversalClient
	channel string

	once   sync.Once
	mu     sync.Mutex
	cur    chan struct{}
	closed bool
	sub    *redis.PubSub
}

func newWaker(rdb redis.UniversalClient, channel string) *waker {
	return &waker{rdb: rdb, channel: channel, cur: make(chan struct{})}
}

// wakeups returns the channel closed at the next announcement, and
// subscribes on first use. Until the subscription stands (or when Redis
// pub/sub is unavailable) waiters fall back to polling alone.
func (w *waker) wakeups() <-chan struct{} {
	w.once.Do(func() {
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return
		}
		w.sub = w.rdb.Subscribe(context.Background(), w.channel)
		ch := w.sub.Channel() // re-subscribes by itself after a reconnect
		w.mu.Unlock()
		go func() {
			for range ch {
				w.mu.Lock()
				close(w.cur)
				w.cur = make(chan struct{})
				w.mu.Unlock()
			}
		}()
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur
}

// close ends the subscription; waiters still polling go on polling.
func (w *waker) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	if w.sub != nil {
		return w.sub.Close()
	}
	return nil
}
