package orphans_test

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/apmtel/apmtel/internal/keys"
	"github.com/apmtel/apmtel/internal/orphans"
	"github.com/apmtel/apmtel/internal/testenv"
)

const queue = "orph"

// activeTask starts a real asynq server whose handler blocks, enqueues one
// task and returns its id once the task is active (hash, list entry and
// lease written by asynq itself).
func activeTask(t *testing.T, opt asynq.RedisClientOpt) (string, *asynq.Inspector) {
	t.Helper()
	release := make(chan struct{})
	srv := asynq.NewServer(opt, asynq.Config{Concurrency: 1, Queues: map[string]int{queue: 1},
		TaskCheckInterval: 50 * time.Millisecond, LogLevel: asynq.FatalLevel, ShutdownTimeout: time.Second})
	if err := srv.Start(asynq.HandlerFunc(func(ctx context.Context, _ *asynq.Task) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	cl := asynq.NewClient(opt)
	insp := asynq.NewInspector(opt)
	t.Cleanup(func() { close(release); srv.Shutdown(); cl.Close(); insp.Close() })
	info, err := cl.Enqueue(asynq.NewTask("test:block", []byte(`{}`)), asynq.Queue(queue), asynq.TaskID("real-1"))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ti, err := insp.GetTaskInfo(queue, info.ID); err == nil && ti.State == asynq.TaskStateActive {
			return info.ID, insp
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("task never became active")
	return "", nil
}

func setup(t *testing.T) (*redis.Client, asynq.RedisClientOpt) {
	rdb, db := testenv.RedisDB(t)
	return rdb, asynq.RedisClientOpt{Addr: testenv.RedisAddr(t), DB: db}
}

// The key names of internal/keys are the ones asynq writes.
func TestKeysAreAsynqs(t *testing.T) {
	rdb, opt := setup(t)
	id, _ := activeTask(t, opt)
	ctx := context.Background()
	q := keys.AsynqQueue(queue)
	if ids, _ := rdb.LRange(ctx, q.Active(), 0, -1).Result(); len(ids) != 1 || ids[0] != id {
		t.Errorf("%s = %v, want [%s]", q.Active(), ids, id)
	}
	if _, err := rdb.ZScore(ctx, q.Lease(), id).Result(); err != nil {
		t.Errorf("%s has no lease of %s: %v", q.Lease(), id, err)
	}
	msg, err := rdb.HGet(ctx, q.Task(id), "msg").Bytes()
	if err != nil || !orphans.IsTaskMessage(msg, id) {
		t.Errorf("%s msg (%v) is not recognised as the task message of %s", q.Task(id), err, id)
	}
	if found, n, err := orphans.Scan(ctx, rdb, queue); err != nil || n != 1 || len(found) != 0 {
		t.Errorf("scan of a queue with one real active task: %v, %d read, %v", found, n, err)
	}
	if s, _ := rdb.ZScore(ctx, q.Lease(), id).Result(); time.Unix(int64(s), 0).Before(time.Now()) {
		t.Errorf("lease score %v is not a future Unix time in seconds", s)
	}
}

func TestIsTaskMessage(t *testing.T) {
	msg := func(typ, id string, extra ...byte) []byte {
		var b []byte
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, typ)
		b = protowire.AppendTag(b, 5, protowire.VarintType)
		b = protowire.AppendVarint(b, 25)
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendString(b, id)
		return append(b, extra...)
	}
	tests := []struct {
		name string
		b    []byte
		want bool
	}{
		{"task message", msg("telemetry:collect", "id-1"), true},
		{"other id", msg("telemetry:collect", "id-2"), false},
		{"no type", msg("", "id-1"), false},
		{"truncated", msg("telemetry:collect", "id-1")[:10], false},
		{"trailing garbage", msg("telemetry:collect", "id-1", 0xff), false},
		{"text", []byte("not a task"), false},
		{"json", []byte(`{"type":"telemetry:collect","id":"id-1"}`), false},
		{"empty", nil, false},
	}
	for _, tc := range tests {
		if got := orphans.IsTaskMessage(tc.b, "id-1"); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Bogus entries are found and, after MinAge, removed; a leased one and a
// real active task are never touched; an undecodable hash is kept.
func TestJanitorRemovesOnlyOldUnleasedOrphans(t *testing.T) {
	rdb, opt := setup(t)
	real, insp := activeTask(t, opt)
	ctx := context.Background()
	q := keys.AsynqQueue(queue)
	rdb.LPush(ctx, q.Active(), "bogus-nohash")
	rdb.HSet(ctx, q.Task("bogus-garbage"), "msg", "garbage", "state", "active")
	rdb.LPush(ctx, q.Active(), "bogus-garbage")
	rdb.LPush(ctx, q.Active(), "bogus-leased")
	rdb.ZAdd(ctx, q.Lease(), redis.Z{Score: float64(time.Now().Add(time.Hour).Unix()), Member: "bogus-leased"})
	// A lease that expired long ago protects nothing: asynq's recoverer
	// skips an id without msg, so the lease would stay forever.
	rdb.LPush(ctx, q.Active(), "bogus-expired")
	rdb.ZAdd(ctx, q.Lease(), redis.Z{Score: float64(time.Now().Add(-time.Hour).Unix()), Member: "bogus-expired"})

	found, n, err := orphans.Scan(ctx, rdb, queue)
	if err != nil || n != 5 {
		t.Fatalf("scan: %d read, %v", n, err)
	}
	got := map[string]orphans.Entry{}
	for _, e := range found {
		got[e.ID] = e
	}
	if len(got) != 4 || got["bogus-nohash"].Reason != orphans.NoTaskHash || got["bogus-garbage"].Reason != orphans.Undecodable ||
		!got["bogus-leased"].Leased(time.Now()) || got["bogus-nohash"].Leased(time.Now()) || got["bogus-expired"].Leased(time.Now()) ||
		got["bogus-expired"].LeaseExpiry.IsZero() {
		t.Fatalf("orphans = %+v", found)
	}
	// asynq's queue size counts the list (LLEN): 4 active. Its GetQueueInfo
	// even fails while an id without a hash is among the first 20 entries
	// (its memory sampling adds MEMORY USAGE of the missing hash), which is
	// why the queue metrics fall back to their own counts.
	if n, _ := rdb.LLen(ctx, q.Active()).Result(); n != 5 {
		t.Errorf("active list holds %d, want 5", n)
	}
	_, err = insp.GetQueueInfo(queue)
	t.Logf("asynq GetQueueInfo with orphans in the active list: %v", err)

	now := time.Now()
	j := &orphans.Janitor{RDB: rdb, Queues: []string{queue}, MinAge: 5 * time.Minute, Logger: zerolog.Nop(), Now: func() time.Time { return now }}
	if r := j.Sweep(ctx); len(r) != 0 {
		t.Fatalf("first sighting removed %v", r)
	}
	now = now.Add(4 * time.Minute)
	if r := j.Sweep(ctx); len(r) != 0 {
		t.Fatalf("removed before MinAge: %v", r)
	}
	now = now.Add(time.Minute)
	removed := j.Sweep(ctx)
	ids := map[string]bool{}
	for _, e := range removed {
		ids[e.ID] = true
	}
	if len(removed) != 3 || !ids["bogus-nohash"] || !ids["bogus-garbage"] || !ids["bogus-expired"] {
		t.Fatalf("removed %+v, want bogus-nohash, bogus-garbage and bogus-expired", removed)
	}
	if _, err := rdb.ZScore(ctx, q.Lease(), "bogus-expired").Result(); err != redis.Nil {
		t.Errorf("expired lease of the removed orphan left behind: %v", err)
	}
	if _, err := rdb.ZScore(ctx, q.Lease(), real).Result(); err != nil {
		t.Errorf("real task's lease: %v", err)
	}
	left, _ := rdb.LRange(ctx, q.Active(), 0, -1).Result()
	if len(left) != 2 || !contains(left, real) || !contains(left, "bogus-leased") {
		t.Errorf("active list = %v, want the real task and the leased entry", left)
	}
	if ti, err := insp.GetTaskInfo(queue, real); err != nil || ti.State != asynq.TaskStateActive {
		t.Errorf("real task: %+v, %v; want active", ti, err)
	}
	if msg, _ := rdb.HGet(ctx, q.Task("bogus-garbage"), "msg").Result(); msg != "garbage" {
		t.Errorf("undecodable hash not kept: msg %q", msg)
	}
	if r := j.Sweep(ctx); len(r) != 0 {
		t.Errorf("second removal: %v", r)
	}
}

// An entry that gets a lease or a different message after it was seen is
// kept; a janitor's clock restarts when an entry stops being an orphan.
func TestRemoveRefusesAnEntryThatCameAlive(t *testing.T) {
	rdb, _ := setup(t)
	ctx := context.Background()
	q := keys.AsynqQueue(queue)
	for _, tc := range []struct {
		name   string
		revive func(id string)
	}{
		{"lease", func(id string) {
			rdb.ZAdd(ctx, q.Lease(), redis.Z{Score: float64(time.Now().Add(time.Minute).Unix()), Member: id})
		}},
		{"message", func(id string) { rdb.HSet(ctx, q.Task(id), "msg", "written meanwhile") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "late-" + tc.name
			rdb.LPush(ctx, q.Active(), id)
			found, _, err := orphans.Scan(ctx, rdb, queue)
			var e orphans.Entry
			for _, f := range found {
				if f.ID == id {
					e = f
				}
			}
			if err != nil || e.ID == "" {
				t.Fatalf("scan: %v, %v", found, err)
			}
			tc.revive(id)
			if gone, err := orphans.Remove(ctx, rdb, e, time.Now()); gone || err != nil {
				t.Errorf("removed an entry that came alive: %v, %v", gone, err)
			}
			if n, _ := rdb.LPos(ctx, q.Active(), id, redis.LPosArgs{}).Result(); n < 0 {
				t.Errorf("entry %s gone", id)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
