package workers_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/apmtel/apmtel/internal/testenv"
	"github.com/apmtel/apmtel/workers"
)

// Which real Redis errors the bridge rides out: by their types and
// go-redis's classifiers, not by their text.
func TestTransientRedisErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	shared, _ := testenv.RedisDB(t)
	down := redis.NewClient(&redis.Options{Addr: testenv.FreeAddr(t), MaxRetries: -1})
	t.Cleanup(func() { down.Close() })
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nothing listens", down.Ping(ctx).Err(), true},
		{"wrong arguments", shared.Do(ctx, "SET", "k").Err(), false},
		{"a script error", shared.Eval(ctx, "return redis.error_reply('boom')", nil).Err(), false},
	}
	// A replica of a master that does not exist refuses writes: READONLY.
	addr := testenv.RedisServer(t, "--replicaof", "127.0.0.1", "1")
	replica := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() { replica.Close() })
	cases = append(cases, struct {
		name string
		err  error
		want bool
	}{"a read-only replica", replica.Set(ctx, "k", "v", 0).Err(), true})
	for _, tc := range cases {
		if tc.err == nil {
			t.Fatalf("%s: no error", tc.name)
		}
		if got := workers.Transient(tc.err); got != tc.want {
			t.Errorf("%s (%v): transient %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
