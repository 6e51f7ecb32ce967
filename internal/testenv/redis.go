package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Database 0 of the test Redis holds the hand-out counter and one lock per
// database in use; every other database belongs to at most one test at a
// time, whatever the number of test binaries or parallel tests.
const (
	counterKey = "apmtel:test:nextdb"
	lockPrefix = "apmtel:test:dblock:"
	// lockTTL bounds how long a crashed test binary keeps a database; a
	// live test renews its lock every lockTTL/3.
	lockTTL = time.Minute
	// waitForDB is how long RedisDB waits for a free database when every
	// one is held by other tests.
	waitForDB = 5 * time.Minute
	// wantDatabases is what scripts/services.sh starts redis-server with.
	wantDatabases = 64
)

// renewScript extends the lock only while it is still the caller's.
// KEYS[1] lock key; ARGV[1] token, ARGV[2] TTL in ms. Result: 1 renewed, 0 not ours.
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`)

// releaseScript deletes the lock only while it is still the caller's.
// KEYS[1] lock key; ARGV[1] token. Result: 1 released, 0 not ours.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

// databases returns the number of databases of the Redis behind c
// (CONFIG GET databases); Redis's default of 16 when CONFIG is refused.
func databases(ctx context.Context, c *redis.Client) (int, error) {
	res, err := c.ConfigGet(ctx, "databases").Result()
	if err != nil {
		if c.Ping(ctx).Err() != nil {
			return 0, err
		}
		return 16, nil
	}
	n, err := strconv.Atoi(res["databases"])
	if err != nil {
		return 0, fmt.Errorf("CONFIG GET databases answered %v", res)
	}
	return n, nil
}

// RedisDB reserves a database of the test Redis (1 to databases-1) for
// one test, flushes it, and returns a client on it. The database is locked
// in database 0 for the test's life, so parallel tests and test packages
// never share one; when all are held it waits for one to be released.
func RedisDB(t testing.TB) (*redis.Client, int) {
	t.Helper()
	return redisDBAt(t, RedisAddr(t))
}

func redisDBAt(t testing.TB, addr string) (*redis.Client, int) {
	t.Helper()
	ctx := context.Background()
	c0 := redis.NewClient(&redis.Options{Addr: addr})
	n, err := databases(ctx, c0)
	if err != nil {
		c0.Close()
		t.Fatalf("redis at %s: %v", addr, err)
	}
	if n < 2 {
		c0.Close()
		t.Fatalf("redis at %s has %d database(s); the tests need at least 2 (one for the locks, one per test running at once), "+
			"%d for a parallel run: start it with --databases %d, as scripts/services.sh does", addr, n, wantDatabases, wantDatabases)
	}
	var tok [8]byte
	_, _ = rand.Read(tok[:])
	token := t.Name() + ":" + hex.EncodeToString(tok[:])
	db, err := lockDB(ctx, c0, n, token)
	if err != nil {
		c0.Close()
		t.Fatalf("redis at %s: %v", addr, err)
	}
	key := lockPrefix + strconv.Itoa(db)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(lockTTL / 3)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_ = renewScript.Run(ctx, c0, []string{key}, token, lockTTL.Milliseconds()).Err()
			}
		}
	}()
	c := redis.NewClient(&redis.Options{Addr: addr, DB: db})
	t.Cleanup(func() {
		c.Close()
		close(stop)
		wg.Wait()
		_ = releaseScript.Run(ctx, c0, []string{key}, token).Err()
		c0.Close()
	})
	if err := c.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("redis flush of db %d: %v", db, err)
	}
	return c, db
}

// lockDB takes the next free database round-robin through the counter.
func lockDB(ctx context.Context, c0 *redis.Client, n int, token string) (int, error) {
	deadline := time.Now().Add(waitForDB)
	for {
		for range n - 1 {
			next, err := c0.Incr(ctx, counterKey).Result()
			if err != nil {
				return 0, err
			}
			db := int(next%int64(n-1)) + 1
			ok, err := c0.SetNX(ctx, lockPrefix+strconv.Itoa(db), token, lockTTL).Result()
			if err != nil {
				return 0, err
			}
			if ok {
				return db, nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("all %d databases were held by other tests for %s: give the server more (--databases %d) or run fewer tests at once",
				n-1, waitForDB, wantDatabases)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// RedisServer starts a redis-server of the test's own on a free loopback
// port (no persistence, extra args appended), waits until it answers and
// kills it when the test ends. It returns its address.
func RedisServer(t testing.TB, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil && os.Getenv("CI") != "true" {
		t.Skip("redis-server is not installed: run scripts/redis-ha.sh ensure")
	}
	_, port, err := net.SplitHostPort(FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-server", append([]string{"--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
		"--dir", t.TempDir()}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", port)
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	Eventually(t, 10*time.Second, "redis-server to answer", func() bool { return c.Ping(context.Background()).Err() == nil })
	return addr
}
