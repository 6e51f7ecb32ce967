package store

import "github.com/redis/go-redis/v9"

// createRunScript creates a run if it does not exist yet.
//
// KEYS[1] run hash, KEYS[2] pending set, KEYS[3] runs sorted set (history)
// ARGV[1] run id, ARGV[2] created_ms (history score), ARGV[3] TTL in ms,
// ARGV[4] JSON object of string metadata fields, ARGV[5..] task names
// Result: 1 when the run was created, 0 when it already existed (nothing changed).
var createRunScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local meta = cjson.decode(ARGV[4])
for k, v in pairs(meta) do redis.call('HSET', KEYS[1], k, v) end
for i = 5, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if #ARGV >= 5 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
return 1
`)

// recordScript stores a task's record while its run is running.
//
// KEYS[1] run hash, KEYS[2] results hash, KEYS[3] pending set
// ARGV[1] task name, ARGV[2] record JSON, ARGV[3] "1" when this is the task's
// final outcome (ok, or failed with no retry left), "0" for an attempt that
// will be retried
// Result: {code, remaining}: code 1 = final record stored and task removed
// from pending, 2 = attempt record stored, 0 = task already final (the first
// final record is kept, so a re-run never counts twice), -1 = run is not
// running (closed, cancelled or gone) and nothing was stored; remaining is
// the number of tasks still pending.
var recordScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'running' then return {-1, 0} end
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 0 then
  return {0, redis.call('SCARD', KEYS[3])}
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
if ARGV[3] == '1' then
  redis.call('SREM', KEYS[3], ARGV[1])
  return {1, redis.call('SCARD', KEYS[3])}
end
return {2, redis.call('SCARD', KEYS[3])}
`)

// closeScript stops a run from accepting results, the first step of finalize.
//
// KEYS[1] run hash, KEYS[2] pending set
// ARGV[1] closed_at (RFC 3339), ARGV[2] reason ("complete", "deadline", "cancelled")
// Result: 1 when this call closed the run, 0 when it was already closed or
// finalized, -1 when the run does not exist.
var closeScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return -1 end
if st ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'closed', 'closed_at', ARGV[1], 'close_reason', ARGV[2])
redis.call('DEL', KEYS[2])
return 1
`)

// setIfNewerScript sets hash fields whose values are "<created_ms>|<payload>"
// only where the stored value is older, so a run that finalizes late never
// overwrites what a newer run wrote.
//
// KEYS[1] hash
// ARGV pairs: field, value ("<created_ms>|<payload>")
// Result: the number of fields written.
var setIfNewerScript = redis.NewScript(`
local n = 0
for i = 1, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  local newms = tonumber(string.match(ARGV[i+1], '^(%d+)|'))
  local curms = cur and tonumber(string.match(cur, '^(%d+)|')) or -1
  if newms and newms >= curms then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1])
    n = n + 1
  end
end
return n
`)

// setLatestScript points the latest-snapshot key at a run unless a newer run
// is already there.
//
// KEYS[1] latest key
// ARGV[1] "<created_ms>|<run id>"
// Result: 1 when updated, 0 when a newer run is kept.
var setLatestScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
local newms = tonumber(string.match(ARGV[1], '^(%d+)|'))
local curms = cur and tonumber(string.match(cur, '^(%d+)|')) or -1
if newms >= curms then redis.call('SET', KEYS[1], ARGV[1]) return 1 end
return 0
`)
