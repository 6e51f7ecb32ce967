package testenv

import (
	"context"
	"net"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisServerAt starts a redis-server of the test's own on addr (a loopback
// FreeAddr), without persistence, so a restart on the same address starts
// empty; extra are further server arguments. The test is skipped when
// redis-server is not installed. stop kills the server (also at cleanup).
func RedisServerAt(t testing.TB, addr string, extra ...string) (stop func()) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"--bind", host, "--port", port, "--save", "", "--appendonly", "no"}, extra...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() { once.Do(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) }
	t.Cleanup(stop)
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	Eventually(t, 10*time.Second, "redis-server on "+addr, func() bool { return c.Ping(context.Background()).Err() == nil })
	return stop
}
