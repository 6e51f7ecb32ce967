package limiter

import (
	"context"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// waker turns the announcements on one pub/sub channel into wake-ups of this
// process's waiters: one subscription, started by the first waiter; every
// message closes cur and replaces it, waking every waiter at once, and
// closes the channel of each watched ticket the message names (handed a
// slot by leaveScript).
type waker struct {
	rdb     redis.UniversalClient
	channel string

	once    sync.Once
	mu      sync.Mutex
	cur     chan struct{}
	watched map[string]chan struct{}
	closed  bool
	sub     *redis.PubSub
}

func newWaker(rdb redis.UniversalClient, channel string) *waker {
	return &waker{rdb: rdb, channel: channel, cur: make(chan struct{}), watched: map[string]chan struct{}{}}
}

// watch returns a channel closed when an announcement names ticket; unwatch
// must follow.
func (w *waker) watch(ticket string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := make(chan struct{})
	w.watched[ticket] = ch
	return ch
}

func (w *waker) unwatch(ticket string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.watched, ticket)
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
			for msg := range ch {
				w.mu.Lock()
				for _, t := range strings.Fields(msg.Payload) {
					if h, ok := w.watched[t]; ok {
						close(h)
						delete(w.watched, t)
					}
				}
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
