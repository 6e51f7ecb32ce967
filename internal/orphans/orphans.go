package orphans

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/apmtel/apmtel/internal/keys"
)

// Reason says why an active entry is orphaned.
type Reason string

const (
	// NoTaskHash: the task hash is missing, or has no msg field.
	NoTaskHash Reason = "no task hash"
	// Undecodable: the hash's msg is not a task message of this id.
	Undecodable Reason = "undecodable task hash"
)

// Entry is an orphaned entry of a queue's active list.
type Entry struct {
	Queue  string
	ID     string
	Reason Reason
	// LeaseExpiry is when the id's lease expires (zero: no lease). The
	// janitor leaves an entry alone while its lease runs; an expired lease of
	// an entry without a hash is no protection, since asynq's recoverer skips
	// ids whose hash has no msg, so that lease stays forever.
	LeaseExpiry time.Time
	// msgSum is the SHA-1 of the hash's msg ("" when there is none): the
	// removal refuses an entry whose hash changed since it was seen.
	msgSum string
}

// MaxScan bounds the entries read from one active list per scan. An active
// list holds at most the workers' concurrency of real tasks; anything beyond
// the bound is left for the next scan after some are removed.
const MaxScan = 10000

// scanScript reads a queue's active list with each id's task message and
// lease in one round trip, so the three are seen at one instant (asynq
// changes them together, in scripts).
//
// KEYS[1] active list, KEYS[2] lease sorted set (same queue, same slot)
// ARGV[1] task hash prefix ("asynq:{<queue>}:t:"), ARGV[2] last index to read
// Result: a flat array, for each id: id, msg ("" when absent), lease expiry
// in Unix seconds ("" when there is no lease).
var scanScript = redis.NewScript(`
local ids = redis.call("LRANGE", KEYS[1], 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
	local msg = redis.call("HGET", ARGV[1] .. id, "msg")
	local lease = redis.call("ZSCORE", KEYS[2], id)
	table.insert(out, id)
	table.insert(out, msg or "")
	table.insert(out, lease or "")
end
return out
`)

// Scan returns the orphaned entries of queue's active list and the number of
// entries read.
func Scan(ctx context.Context, rdb redis.UniversalClient, queue string) ([]Entry, int, error) {
	q := keys.AsynqQueue(queue)
	res, err := scanScript.Run(ctx, rdb, []string{q.Active(), q.Lease()}, q.TaskPrefix(), MaxScan-1).Slice()
	if err != nil {
		return nil, 0, fmt.Errorf("scan active list of queue %s: %w", queue, err)
	}
	if len(res)%3 != 0 {
		return nil, 0, fmt.Errorf("scan active list of queue %s: script scan: reply of %d elements, not triples", queue, len(res))
	}
	var out []Entry
	n := len(res) / 3
	for i := 0; i+2 < len(res); i += 3 {
		// id is always a string; msg and lease are nil when absent.
		id, ok := res[i].(string)
		msg, okMsg := res[i+1].(string)
		lease, okLease := res[i+2].(string)
		if !ok || (!okMsg && res[i+1] != nil) || (!okLease && res[i+2] != nil) {
			return nil, 0, fmt.Errorf("scan active list of queue %s: script scan: unexpected reply %v", queue, res[i:i+3])
		}
		e := Entry{Queue: queue, ID: id}
		if sec, err := strconv.ParseFloat(lease, 64); err == nil {
			e.LeaseExpiry = time.Unix(int64(sec), 0)
		}
		switch {
		case msg == "":
			e.Reason = NoTaskHash
		case !IsTaskMessage([]byte(msg), id):
			e.Reason, e.msgSum = Undecodable, sum(msg)
		default:
			continue
		}
		out = append(out, e)
	}
	return out, n, nil
}

func sum(s string) string { h := sha1.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

// IsTaskMessage reports whether b is a protobuf-encoded asynq TaskMessage of
// task id: well-formed wire format with a non-empty type (field 1) and the
// id (field 3). asynq's own decoder is internal to it; a wire-format check
// is enough to tell a task from garbage, and unknown fields (a newer asynq)
// still pass, as they would for asynq's decoder.
func IsTaskMessage(b []byte, id string) bool {
	var typ, gotID string
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if wt == protowire.BytesType && (num == 1 || num == 3) {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return false
			}
			if num == 1 {
				typ = string(v)
			} else {
				gotID = string(v)
			}
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, wt, b)
		if m < 0 {
			return false
		}
		b = b[m:]
	}
	return typ != "" && gotID == id
}

// removeScript unlinks one orphaned id from a queue's active list, unless it
// came alive since it was seen: it has a running lease now, or its task hash
// holds a message other than the one seen. Its expired lease goes with it
// (asynq's recoverer skips an id without msg, so nothing else removes it).
// The task hash itself is never deleted.
//
// KEYS[1] active list, KEYS[2] lease sorted set, KEYS[3] the id's task hash
// ARGV[1] id, ARGV[2] SHA-1 of the msg seen ("" when there was none),
// ARGV[3] now in Unix seconds
// Result: the number of list entries removed (0: kept).
var removeScript = redis.NewScript(`
local lease = redis.call("ZSCORE", KEYS[2], ARGV[1])
if lease and tonumber(lease) > tonumber(ARGV[3]) then return 0 end
local msg = redis.call("HGET", KEYS[3], "msg")
if msg and (ARGV[2] == "" or redis.sha1hex(msg) ~= ARGV[2]) then return 0 end
local n = redis.call("LREM", KEYS[1], 0, ARGV[1])
if lease then redis.call("ZREM", KEYS[2], ARGV[1]) end
return n
`)

// Leased reports whether e's lease runs at now.
func (e Entry) Leased(now time.Time) bool { return now.Before(e.LeaseExpiry) }

// Remove unlinks e from its active list if it is still the orphan it was
// seen as at now, and reports whether it did.
func Remove(ctx context.Context, rdb redis.UniversalClient, e Entry, now time.Time) (bool, error) {
	q := keys.AsynqQueue(e.Queue)
	n, err := removeScript.Run(ctx, rdb, []string{q.Active(), q.Lease(), q.Task(e.ID)}, e.ID, e.msgSum, now.Unix()).Int64()
	if err != nil {
		return false, fmt.Errorf("remove orphaned entry %s of queue %s: %w", e.ID, e.Queue, err)
	}
	return n > 0, nil
}

func keysTask(e Entry) string { return keys.AsynqQueue(e.Queue).Task(e.ID) }

// Counts is a queue's job count by state read straight from asynq's lists
// and sets: the fallback of the queue metrics when asynq cannot read a queue
// that holds orphans (its GetQueueInfo fails while an id without a hash is
// among the first 20 of a list, as it samples memory use).
func Counts(ctx context.Context, rdb redis.UniversalClient, queue string) (map[string]int64, error) {
	q := keys.AsynqQueue(queue)
	var cmds []*redis.IntCmd
	states := []string{"pending", "active", "scheduled", "retry", "archived", "completed"}
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		cmds = append(cmds, p.LLen(ctx, q.Pending()), p.LLen(ctx, q.Active()), p.ZCard(ctx, q.Scheduled()),
			p.ZCard(ctx, q.Retry()), p.ZCard(ctx, q.Archived()), p.ZCard(ctx, q.Completed()))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count jobs of queue %s: %w", queue, err)
	}
	out := make(map[string]int64, len(states))
	for i, s := range states {
		out[s] = cmds[i].Val()
	}
	return out, nil
}
