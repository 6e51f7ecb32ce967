package run

import "github.com/redis/go-redis/v9"

// The scripts name a run's hash fields and status values literally; they are
// the same strings as the constants in fields.go and types.go, and
// TestScriptsUseKnownNames keeps them so. Every script touches only keys of
// one key space, which share a hash tag: one Redis Cluster slot. Scripts
// never decode and re-encode a whole stored record (Lua's cjson turns an
// empty array into an object); they build new records from named fields.

// createScript creates a run unless one with its id exists.
//
// KEYS[1] run hash, KEYS[2] pending set, KEYS[3] runs sorted set (history)
// ARGV[1] run id, ARGV[2] created_ms (history score), ARGV[3] TTL in ms,
// ARGV[4] JSON object of string fields, ARGV[5..] task names
// Result: 1 when the run was created, 0 when it already existed (nothing changed).
var createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local meta = cjson.decode(ARGV[4])
for k, v in pairs(meta) do redis.call('HSET', KEYS[1], k, v) end
for i = 5, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if #ARGV >= 5 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
return 1
`)

// startScript records that an attempt of a task began.
//
// KEYS[1] run hash, KEYS[2] results hash, KEYS[3] pending set, KEYS[4] attempts hash
// ARGV[1] task, ARGV[2] attempt number, ARGV[3] max attempts, ARGV[4] worker,
// ARGV[5] started_at (RFC 3339), ARGV[6] the run's created_at (the first
// attempt's queued_at; a retry was queued when its previous attempt finished)
// Result: {code, remaining, record}: code 1 = started (record is the JSON
// written), 0 = the task already has a final record (nothing written; the
// job is a re-delivery), -1 = the run is not open (nothing written);
// remaining is the number of tasks without a final record.
var startScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'status') ~= 'open' then return {-1, 0, ''} end
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 0 then
  return {0, redis.call('SCARD', KEYS[3]), ''}
end
local queued = ARGV[6]
local last = nil
local prev = redis.call('HGET', KEYS[2], ARGV[1])
if prev then
  local ok, p = pcall(cjson.decode, prev)
  if ok and type(p) == 'table' then
    if p.status == 'retrying' and type(p.finished_at) == 'string' then queued = p.finished_at end
    if type(p.error) == 'string' and p.error ~= '' then last = p.error
    elseif type(p.last_error) == 'string' then last = p.last_error end
  end
end
local rec = {task = ARGV[1], status = 'running', took_ms = 0, attempt = tonumber(ARGV[2]),
  max_attempts = tonumber(ARGV[3]), worker = ARGV[4], queued_at = queued, started_at = ARGV[5], last_error = last}
local enc = cjson.encode(rec)
redis.call('HSET', KEYS[2], ARGV[1], enc)
redis.call('HSET', KEYS[4], ARGV[1] .. '#' .. ARGV[2], cjson.encode({task = ARGV[1], attempt = tonumber(ARGV[2]),
  worker = ARGV[4], status = 'running', queued_at = queued, started_at = ARGV[5]}))
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[4], ttl)
end
return {1, redis.call('SCARD', KEYS[3]), enc}
`)

// recordScript stores the outcome of an attempt while the run is open.
//
// KEYS[1] run hash, KEYS[2] results hash, KEYS[3] pending set, KEYS[4] attempts hash
// ARGV[1] task, ARGV[2] record JSON, ARGV[3] "1" when this is the task's
// final outcome, "0" for an attempt that will be retried, ARGV[4] attempt
// field ("<task>#<n>"), ARGV[5] attempt JSON
// Result: {code, remaining}: 1 = final record stored and the task left
// pending, 2 = attempt record stored, 0 = the task already had a final
// record (the first one is kept, so a re-run never counts twice), -1 = the
// run is not open and nothing was stored; remaining counts tasks still pending.
var recordScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'status') ~= 'open' then return {-1, 0} end
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 0 then
  return {0, redis.call('SCARD', KEYS[3])}
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[4], ARGV[4], ARGV[5])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[4], ttl)
end
if ARGV[3] == '1' then
  redis.call('SREM', KEYS[3], ARGV[1])
  return {1, redis.call('SCARD', KEYS[3])}
end
return {2, redis.call('SCARD', KEYS[3])}
`)

// closeScript stops an open run from accepting results.
//
// KEYS[1] run hash, KEYS[2] pending set
// ARGV[1] closed_at (RFC 3339), ARGV[2] reason ("complete" or "deadline")
// Result: {code, status, reason}: code 1 = this call closed the run, 0 = it
// was no longer open, -1 = no such run; status and reason are the run's
// after the call (the reason of whoever closed it).
var closeScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return {-1, '', ''} end
if st ~= 'open' then return {0, st, redis.call('HGET', KEYS[1], 'close_reason') or ''} end
redis.call('HSET', KEYS[1], 'status', 'closed', 'closed_at', ARGV[1], 'close_reason', ARGV[2])
redis.call('DEL', KEYS[2])
return {1, 'closed', ARGV[2]}
`)

// cancelScript cancels an open run: every unfinished task is recorded as
// cancelled, its running attempt too, and the upload is skipped. A cancelled
// run has no snapshot, never becomes latest and is never uploaded.
//
// KEYS[1] run hash, KEYS[2] pending set, KEYS[3] results hash, KEYS[4] attempts hash,
// KEYS[5] counters hash
// ARGV[1] now (RFC 3339), ARGV[2] the cancelled tasks' error text,
// ARGV[3] the run's counter field, ARGV[4] the skipped upload's counter field
// Result: {code, status}: 1 = cancelled by this call (both counters
// incremented), 0 = the run was not open (status says what it is), -1 = no such run.
var cancelScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return {-1, ''} end
if st ~= 'open' then return {0, st} end
for _, task in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local rec = {task = task, status = 'cancelled', took_ms = 0, attempt = 0, deadline = 'cancelled',
    error = ARGV[2], finished_at = ARGV[1]}
  local prev = redis.call('HGET', KEYS[3], task)
  if prev then
    local ok, p = pcall(cjson.decode, prev)
    if ok and type(p) == 'table' then
      if type(p.attempt) == 'number' then rec.attempt = p.attempt end
      if type(p.max_attempts) == 'number' then rec.max_attempts = p.max_attempts end
      if type(p.worker) == 'string' then rec.worker = p.worker end
      if type(p.queued_at) == 'string' then rec.queued_at = p.queued_at end
      if type(p.started_at) == 'string' then rec.started_at = p.started_at end
      if type(p.error) == 'string' and p.error ~= '' then rec.last_error = p.error
      elseif type(p.last_error) == 'string' then rec.last_error = p.last_error end
      if p.status == 'running' and rec.attempt > 0 then
        redis.call('HSET', KEYS[4], task .. '#' .. rec.attempt, cjson.encode({task = task, attempt = rec.attempt,
          worker = rec.worker, status = 'cancelled', queued_at = rec.queued_at, started_at = rec.started_at,
          finished_at = ARGV[1], error = ARGV[2]}))
      end
    end
  end
  redis.call('HSET', KEYS[3], task, cjson.encode(rec))
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'closed_at', ARGV[1], 'close_reason', 'cancelled',
  'upload', 'skipped', 'upload_detail', 'cancelled', 'upload_at', ARGV[1])
redis.call('HINCRBY', KEYS[5], ARGV[3], 1)
redis.call('HINCRBY', KEYS[5], ARGV[4], 1)
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[3], ttl)
  redis.call('PEXPIRE', KEYS[4], ttl)
end
return {1, 'cancelled'}
`)

// sealScript seals a closed run in one step: the records of tasks that never
// finished, every attempt still marked running (abandoned: its worker was
// lost or paused past its lease while another attempt took over), the snapshot, the other plugins' objects, the latest pointer (full runs only, unless a newer
// run holds it), the last good values (unless a newer run wrote them),
// sealed_at, status, report and the upload state.
//
// KEYS[1] run hash, KEYS[2] results hash, KEYS[3] snapshot, KEYS[4] latest,
// KEYS[5] last good hash, KEYS[6] attempts hash, KEYS[7] plugin objects,
// KEYS[8] counters hash
// ARGV[1] sealed_at (RFC 3339), ARGV[2] report JSON, ARGV[3] snapshot JSON,
// ARGV[4] "1" to move latest to this run, ARGV[5] "<created_ms>|<run id>",
// ARGV[6] upload state, ARGV[7] upload detail, ARGV[8] created_ms,
// ARGV[9] n = number of unfinished tasks, ARGV[10] plugin objects JSON
// ("" for none: nothing written), ARGV[11] the abandoned attempts' error
// text, ARGV[12] the run's counter field, ARGV[13] the upload's counter
// field ("" while the upload is outstanding), then n groups of 4: task, record JSON, attempt field ("" for none),
// attempt JSON; then pairs of task, fragment JSON for the last good values
// Result: {code, status}: 1 = sealed by this call (counters incremented),
// 0 = the run was not closed (status says what it is: sealed by another
// finalizer, cancelled).
var sealScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'closed' then return {0, st or ''} end
local ttl = redis.call('PTTL', KEYS[1])
local n = tonumber(ARGV[9])
local i = 14
for _ = 1, n do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i+1])
  if ARGV[i+2] ~= '' then redis.call('HSET', KEYS[6], ARGV[i+2], ARGV[i+3]) end
  i = i + 4
end
local att = redis.call('HGETALL', KEYS[6])
for j = 1, #att, 2 do
  local ok, a = pcall(cjson.decode, att[j+1])
  if ok and type(a) == 'table' and a.status == 'running' then
    redis.call('HSET', KEYS[6], att[j], cjson.encode({task = a.task, attempt = a.attempt, worker = a.worker,
      status = 'abandoned', queued_at = a.queued_at, started_at = a.started_at, finished_at = ARGV[1], error = ARGV[11]}))
  end
end
if ttl > 0 then
  redis.call('SET', KEYS[3], ARGV[3], 'PX', ttl)
  if ARGV[10] ~= '' then redis.call('SET', KEYS[7], ARGV[10], 'PX', ttl) end
  redis.call('PEXPIRE', KEYS[2], ttl)
  if redis.call('EXISTS', KEYS[6]) == 1 then redis.call('PEXPIRE', KEYS[6], ttl) end
else
  redis.call('SET', KEYS[3], ARGV[3])
  if ARGV[10] ~= '' then redis.call('SET', KEYS[7], ARGV[10]) end
end
if ARGV[4] == '1' then
  local cur = redis.call('GET', KEYS[4])
  local curms = cur and tonumber(string.match(cur, '^(%d+)|')) or -1
  if tonumber(ARGV[8]) >= curms then redis.call('SET', KEYS[4], ARGV[5]) end
end
local newms = tonumber(ARGV[8])
while i <= #ARGV do
  local cur = redis.call('HGET', KEYS[5], ARGV[i])
  local curms = cur and tonumber(string.match(cur, '^(%d+)|')) or -1
  if newms >= curms then redis.call('HSET', KEYS[5], ARGV[i], ARGV[8] .. '|' .. ARGV[i+1]) end
  i = i + 2
end
redis.call('HSET', KEYS[1], 'status', 'sealed', 'sealed_at', ARGV[1], 'report', ARGV[2],
  'upload', ARGV[6], 'upload_detail', ARGV[7], 'upload_at', ARGV[1], 'upload_since', ARGV[1])
redis.call('HINCRBY', KEYS[8], ARGV[12], 1)
if ARGV[13] ~= '' then redis.call('HINCRBY', KEYS[8], ARGV[13], 1) end
return {1, 'sealed'}
`)

// uploadScript moves a sealed run's upload from one state to another.
//
// KEYS[1] run hash, KEYS[2] counters hash
// ARGV[1] comma-separated states the upload may be in, ARGV[2] new state,
// ARGV[3] attempt, ARGV[4] max attempts, ARGV[5] error, ARGV[6] detail,
// ARGV[7] at (RFC 3339); a move to "pending" also starts the retry window
// (upload_since); ARGV[8] the counter field to increment when the new state
// ends the upload ("" otherwise)
// Result: {code, state}: 1 = moved (state is the one before), 0 = the upload
// was in another state (state says which), -1 = the run is missing or not
// sealed (state is the run's status).
var uploadScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'sealed' then return {-1, st or ''} end
local cur = redis.call('HGET', KEYS[1], 'upload') or ''
local allowed = false
for s in string.gmatch(ARGV[1], '[^,]+') do if s == cur then allowed = true end end
if not allowed then return {0, cur} end
redis.call('HSET', KEYS[1], 'upload', ARGV[2], 'upload_attempt', ARGV[3], 'upload_max', ARGV[4],
  'upload_error', ARGV[5], 'upload_detail', ARGV[6], 'upload_at', ARGV[7])
if ARGV[2] == 'pending' then redis.call('HSET', KEYS[1], 'upload_since', ARGV[7]) end
if ARGV[8] ~= '' then redis.call('HINCRBY', KEYS[2], ARGV[8], 1) end
return {1, cur}
`)

// sourceInfoScript stores the source cluster's identity once per run.
//
// KEYS[1] run hash
// ARGV[1] source info JSON
// Result: 1 when stored, 0 when the run already had it, -1 when the run is gone.
var sourceInfoScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('HSETNX', KEYS[1], 'source_info', ARGV[1])
`)

// trimScript bounds the history. Runs whose hash expired leave the history
// first; then, oldest first and while more than the limit remain, runs that
// can change no more: cancelled ones, and sealed ones whose upload ended,
// except the run the latest pointer names. An open or closed run, a run whose
// upload is outstanding, and the latest snapshot are never removed.
//
// KEYS[1] runs sorted set, KEYS[2] latest
// ARGV[1] history limit, ARGV[2] run key prefix (keys.Space.RunPrefix),
// ARGV[3..] suffixes of a run's keys (keys.RunSuffixes)
// Result: the number of runs removed.
var trimScript = redis.NewScript(`
local latest = redis.call('GET', KEYS[2])
local latestID = latest and string.match(latest, '^%d+|(.*)$') or ''
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[1])
local removed = 0
local function drop(id)
  for j = 3, #ARGV do redis.call('DEL', ARGV[2] .. id .. ARGV[j]) end
  redis.call('ZREM', KEYS[1], id)
  removed = removed + 1
  excess = excess - 1
end
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local rk = ARGV[2] .. id
  local f = redis.call('HMGET', rk, 'status', 'upload')
  if not f[1] then
    drop(id)
  elseif excess > 0 and id ~= latestID then
    local st, up = f[1], f[2]
    if st == 'cancelled' or (st == 'sealed' and (up == 'uploaded' or up == 'written' or up == 'skipped' or up == 'failed')) then
      drop(id)
    end
  end
end
return removed
`)
