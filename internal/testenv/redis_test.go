package testenv

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// fakeTB stands in for a test that RedisDB serves: it records Fatalf and
// runs its cleanups when told, so one test can play several.
type fakeTB struct {
	testing.TB
	name     string
	mu       sync.Mutex
	fatal    string
	cleanups []func()
}

func (f *fakeTB) Helper()      {}
func (f *fakeTB) Name() string { return f.name }
func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

// end runs the cleanups, last first, as the testing package does.
func (f *fakeTB) end() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
	f.cleanups = nil
}

// reserve runs redisDBAt for f in a goroutine of its own (Fatalf ends it).
func reserve(f *fakeTB, addr string) <-chan int {
	got := make(chan int, 1)
	go func() {
		defer close(got)
		c, db := redisDBAt(f, addr)
		if c != nil {
			got <- db
		}
	}()
	return got
}

// A Redis with a single database gets a message that says what the tests
// need, not "DB index is out of range" from every test.
func TestRedisDBSaysWhatItNeeds(t *testing.T) {
	t.Parallel()
	addr := RedisServer(t, "--databases", "1")
	f := &fakeTB{TB: t, name: "one-db"}
	if db, ok := <-reserve(f, addr); ok {
		t.Fatalf("got database %d of a server with one", db)
	}
	f.end()
	for _, want := range []string{"has 1 database(s)", "--databases 64"} {
		if !strings.Contains(f.fatal, want) {
			t.Errorf("message %q lacks %q", f.fatal, want)
		}
	}
}

// Tests holding every database make the next one wait for a release: no
// two tests ever share a database.
func TestRedisDBNeverShared(t *testing.T) {
	t.Parallel()
	addr := RedisServer(t, "--databases", "3") // databases 1 and 2 are handed out
	a, b, c := &fakeTB{TB: t, name: "a"}, &fakeTB{TB: t, name: "b"}, &fakeTB{TB: t, name: "c"}
	dbA, dbB := <-reserve(a, addr), <-reserve(b, addr)
	if a.fatal != "" || b.fatal != "" || dbA == dbB || dbA+dbB != 3 {
		t.Fatalf("a got %d (%s), b got %d (%s); want databases 1 and 2", dbA, a.fatal, dbB, b.fatal)
	}
	waiting := reserve(c, addr)
	a.end() // releases a's database
	dbC := <-waiting
	if c.fatal != "" || dbC != dbA {
		t.Fatalf("c got %d (%s), want the released %d", dbC, c.fatal, dbA)
	}
	// b still holds its database, c holds a's.
	r := redis.NewClient(&redis.Options{Addr: addr})
	defer r.Close()
	for _, h := range []struct {
		tb *fakeTB
		db int
	}{{b, dbB}, {c, dbC}} {
		if v := r.Get(context.Background(), lockPrefix+strconv.Itoa(h.db)).Val(); !strings.HasPrefix(v, h.tb.name+":") {
			t.Errorf("lock of database %d = %q, want %s's", h.db, v, h.tb.name)
		}
	}
	b.end()
	c.end()
	if n := r.Exists(context.Background(), lockPrefix+"1", lockPrefix+"2").Val(); n != 0 {
		t.Errorf("%d locks left after every test ended", n)
	}
}
