package limiter

import "github.com/redis/go-redis/v9"

// sweep (a part of the scripts below; needs now in ms) drops holders whose
// lease ran out and queued tickets whose waiter stopped polling.
const sweep = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, d in ipairs(dead) do
  redis.call('ZREM', KEYS[2], d)
end
if #dead > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
end
`

// acquireScript queues a ticket and hands it a slot when its turn has come.
//
// KEYS[1] holders: sorted set, member ticket, score lease expiry (ms)
// KEYS[2] queue: sorted set, member ticket, score arrival time (µs)
// KEYS[3] waiters: sorted set, member ticket, score waiter lease expiry (ms)
// ARGV[1] limit, ARGV[2] ticket, ARGV[3] holder lease (ms), ARGV[4] waiter lease (ms),
// ARGV[5] (optional) the ticket's place in the queue (µs, Redis time), 0 or absent for now
// ARGV[6] (optional) "peek": when the ticket's turn has come, answer {2, 0, q}
// and leave it queued instead of handing it the slot
// Result: {1, 0, q} when the ticket now holds a slot; {0, n, q} while it
// waits, n >= 1 being how many slots must free up before its turn; q is the
// ticket's queue score (ARGV[5], or now on its first call); {2, 0, q} for
// a peek whose turn has come.
//
// Expired holders and waiters are dropped first. A ticket takes a slot only
// when fewer tickets are ahead of it in the queue than there are free slots,
// so the slots go out strictly in arrival order (no starvation) and every
// ticket ahead still finds its own. Time comes from Redis, so the workers'
// clocks do not matter. Calling it again for a holder (handed its slot by
// leaveScript) answers {1, 0} and starts its lease anew, so that the
// caller's lease clock, started when it sent this call, is on the safe side.
var acquireScript = redis.NewScript(`
local t = redis.call('TIME')
local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(us / 1000)
local limit, ticket = tonumber(ARGV[1]), ARGV[2]
local lease, wlease = tonumber(ARGV[3]), tonumber(ARGV[4])
local q = tonumber(ARGV[5] or '0') or 0
if q <= 0 then q = us end
local held = redis.call('ZSCORE', KEYS[1], ticket)
if held and tonumber(held) > now then
  redis.call('ZADD', KEYS[1], 'XX', now + lease, ticket)
  return {1, 0, q}
end
` + sweep + `local queued = redis.call('ZSCORE', KEYS[2], ticket)
if queued then
  q = tonumber(queued)
else
  redis.call('ZADD', KEYS[2], q, ticket)
end
local keep = 2 * math.max(lease, wlease)
local rank = redis.call('ZRANK', KEYS[2], ticket)
local free = limit - redis.call('ZCARD', KEYS[1])
if rank < free and ARGV[6] == 'peek' then
  redis.call('ZADD', KEYS[3], now + wlease, ticket)
  return {2, 0, q}
end
if rank < free then
  redis.call('ZREM', KEYS[2], ticket)
  redis.call('ZREM', KEYS[3], ticket)
  redis.call('ZADD', KEYS[1], now + lease, ticket)
  redis.call('PEXPIRE', KEYS[1], keep)
  return {1, 0, q}
end
redis.call('ZADD', KEYS[3], now + wlease, ticket)
redis.call('PEXPIRE', KEYS[2], keep)
redis.call('PEXPIRE', KEYS[3], keep)
return {0, rank - math.max(free, 0) + 1, q}
`)

// renewScript extends a held slot's lease (the heartbeat).
//
// KEYS[1] holders (as in acquireScript)
// ARGV[1] ticket, ARGV[2] lease (ms)
// Result: 1 when renewed, 0 when the ticket no longer holds a slot (its
// lease ran out and it was dropped).
var renewScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local exp = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not exp or tonumber(exp) <= now then
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
return 1
`)

// leaveScript gives a slot back, or takes a ticket out of the queue when its
// waiter gives up; hands the freed slots on to the tickets whose turn has
// now come; and announces it, all in one step: the releaser's one round
// trip replaces its release and announcement, and each next holder's own
// acquire call (it learns from the announcement that it holds the slot).
// PUBLISH names no key, so the script still touches one slot.
//
// KEYS[1] holders, KEYS[2] queue, KEYS[3] waiters (as in acquireScript)
// ARGV[1] ticket, ARGV[2] wake channel, ARGV[3] limit (0: hand nothing on),
// ARGV[4] holder lease (ms), ARGV[5] key lifetime (ms)
// Result: the number of sets the ticket was removed from (0 or 1). When 1,
// the tickets handed a slot (first in the queue, as many as slots are free,
// exactly those acquireScript would serve next) are holders now, and the
// message published on ARGV[2] lists them, separated by spaces ("" for none).
// A handed slot's lease is what is left of its waiter's lease (ARGV[4] if it
// has none): a waiter that died a moment ago keeps the slot no longer than
// it would have kept its place in the queue, and a live one renews the
// lease as soon as it learns it holds the slot.
var leaveScript = redis.NewScript(`
local ticket = ARGV[1]
local n = redis.call('ZREM', KEYS[1], ticket) + redis.call('ZREM', KEYS[2], ticket) + redis.call('ZREM', KEYS[3], ticket)
if n == 0 then
  return 0
end
local limit = tonumber(ARGV[3] or '0') or 0
local handed = {}
if limit > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
` + sweep + `
  local free = limit - redis.call('ZCARD', KEYS[1])
  if free > 0 then
    handed = redis.call('ZRANGE', KEYS[2], 0, free - 1)
    for _, h in ipairs(handed) do
      local exp = tonumber(redis.call('ZSCORE', KEYS[3], h) or (now + tonumber(ARGV[4])))
      redis.call('ZREM', KEYS[2], h)
      redis.call('ZREM', KEYS[3], h)
      redis.call('ZADD', KEYS[1], exp, h)
    end
    if #handed > 0 then
      redis.call('PEXPIRE', KEYS[1], ARGV[5])
    end
  end
end
redis.call('PUBLISH', ARGV[2], table.concat(handed, ' '))
return n
`)

// requeueScript gives back a slot taken a moment ago and queues its ticket
// again at its old place: the ticket's cluster had a slot for it but the
// fleet had none, and a waiting ticket must hold nothing. The ticket keeps
// its place at the head of its cluster's queue, so its cluster's order
// stays as it was; the change is announced (a ticket of the same cluster
// that arrived meanwhile, with an older place, may now be first).
//
// KEYS[1] holders, KEYS[2] queue, KEYS[3] waiters (as in acquireScript)
// ARGV[1] ticket, ARGV[2] place (µs), ARGV[3] waiter lease (ms),
// ARGV[4] key lifetime (ms), ARGV[5] wake channel
// Result: 1 if the ticket still held the slot, 0 if its lease had run out
// (it is queued again either way).
var requeueScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
redis.call('PUBLISH', ARGV[5], '')
return held
`)
