package backoff

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apmtel/apmtel/internal/keys"
)

// Field names of the backoff hash (keys.Space.Backoff).
const (
	fieldFailures    = "failures"
	fieldLastError   = "last_error"
	fieldLastFailure = "last_failure_ms"
	fieldUntil       = "until_ms"
	fieldLastRun     = "last_run"
)

// setScript replaces the state if nobody changed it since it was read.
//
// KEYS[1] backoff hash
// ARGV[1] the last_run read before ("" when the hash was absent or had none),
// ARGV[2] TTL in ms, ARGV[3..] field, value pairs of the new state
// Result: 1 when written, 0 when last_run differs from ARGV[1] (nothing
// written: another outcome was recorded meanwhile; read again).
var setScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'last_run') or ''
if cur ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if #ARGV > 2 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 3))
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
`)

// Store keeps the State of one source cluster in Redis.
type Store struct {
	rdb    redis.UniversalClient
	key    string
	ttl    time.Duration
	policy Policy
}

// NewStore returns the store of space's source. ttl bounds how long the
// state of a cluster that no longer records outcomes (removed from the
// fleet) stays; it must exceed the policy's Max.
func NewStore(rdb redis.UniversalClient, space keys.Space, policy Policy, ttl time.Duration) *Store {
	return &Store{rdb: rdb, key: space.Backoff(), ttl: max(ttl, 2*policy.Max), policy: policy}
}

// Get returns the cluster's State (the zero State when none is stored).
func (s *Store) Get(ctx context.Context) (State, error) {
	m, err := s.rdb.HGetAll(ctx, s.key).Result()
	if err != nil {
		return State{}, fmt.Errorf("backoff %s: %w", s.key, err)
	}
	return decode(m)
}

// Failed counts run as failed at at with errText and returns the new State.
// Counting the same run twice counts it once.
func (s *Store) Failed(ctx context.Context, run string, at time.Time, errText string) (State, error) {
	return s.update(ctx, func(st State) State { return st.Failed(s.policy, run, at, errText) })
}

// Succeeded records that a run succeeded: the cluster is healthy again and
// its key is removed (a healthy cluster costs no key).
func (s *Store) Succeeded(ctx context.Context) (State, error) {
	return s.update(ctx, func(st State) State { return st.Succeeded() })
}

// ErrContended is returned when the state kept changing under an update.
var ErrContended = errors.New("backoff: state changed concurrently, giving up")

// update applies next optimistically: outcomes of one cluster are rare (one
// run per slot, the odd manual run), so a conflict is retried after a short
// random pause rather than serialised with a lock.
func (s *Store) update(ctx context.Context, next func(State) State) (State, error) {
	for attempt := range 100 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return State{}, ctx.Err()
			case <-time.After(time.Duration(rand.Int64N(int64(attempt)*int64(time.Millisecond)) + 1)):
			}
		}
		cur, err := s.Get(ctx)
		if err != nil {
			return State{}, err
		}
		n := next(cur)
		if n == cur {
			return cur, nil
		}
		res, err := setScript.Run(ctx, s.rdb, []string{s.key}, append([]any{cur.LastRun, s.ttl.Milliseconds()}, encode(n)...)...).Result()
		if err != nil {
			return State{}, fmt.Errorf("backoff %s: %w", s.key, err)
		}
		ok, isInt := res.(int64)
		if !isInt {
			return State{}, fmt.Errorf("backoff %s: script replied %T %v, want an integer", s.key, res, res)
		}
		if ok == 1 {
			return n, nil
		}
	}
	return State{}, ErrContended
}

func encode(s State) []any {
	if s == (State{}) {
		return nil
	}
	out := []any{fieldFailures, strconv.Itoa(s.Failures), fieldLastRun, s.LastRun}
	if s.LastError != "" {
		out = append(out, fieldLastError, s.LastError)
	}
	if !s.LastFailureAt.IsZero() {
		out = append(out, fieldLastFailure, strconv.FormatInt(s.LastFailureAt.UnixMilli(), 10))
	}
	if !s.Until.IsZero() {
		out = append(out, fieldUntil, strconv.FormatInt(s.Until.UnixMilli(), 10))
	}
	return out
}

func decode(m map[string]string) (State, error) {
	var s State
	if len(m) == 0 {
		return s, nil
	}
	var err error
	if v := m[fieldFailures]; v != "" {
		if s.Failures, err = strconv.Atoi(v); err != nil {
			return State{}, fmt.Errorf("backoff: %s %q: %w", fieldFailures, v, err)
		}
	}
	ms := func(field string) (time.Time, error) {
		v := m[field]
		if v == "" {
			return time.Time{}, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("backoff: %s %q: %w", field, v, err)
		}
		return time.UnixMilli(n).UTC(), nil
	}
	if s.LastFailureAt, err = ms(fieldLastFailure); err != nil {
		return State{}, err
	}
	if s.Until, err = ms(fieldUntil); err != nil {
		return State{}, err
	}
	s.LastError, s.LastRun = m[fieldLastError], m[fieldLastRun]
	return s, nil
}
