package redisstate

import "github.com/redis/go-redis/v9"

// Every script gets the session's keys in this order: KEYS[1] state,
// KEYS[2] out, KEYS[3] topics, KEYS[4] lease. ARGV[1] is always the format
// version. Errors are error replies whose first word names them (see
// mapError). A script validates everything before it changes anything, since
// Redis does not undo the effects of a script that fails halfway.

// luaCheck defines check(epoch): nil when the stored state is of this
// version and owned by epoch, which was not released (the state's field
// released), else the error reply's text.
const luaCheck = `
local function check(epoch)
  local st = redis.call('HMGET', KEYS[1], 'v', 'epoch', 'released')
  if not st[1] then return 'TETHER_NOTFOUND' end
  if st[1] ~= ARGV[1] then return 'TETHER_VERSION ' .. st[1] end
  if not st[2] then return 'TETHER_CORRUPT no epoch' end
  if st[2] ~= epoch or st[3] == epoch then return 'TETHER_FENCED ' .. st[2] end
  return nil
end
local function keep(window)
  redis.call('PEXPIRE', KEYS[1], window)
  redis.call('PEXPIRE', KEYS[2], window)
  redis.call('PEXPIRE', KEYS[3], window)
end
-- calls runs cmd on key with the items of list, up to 1000 at a time
-- (Lua's unpack has a limit), and returns the replies' items in order.
local function calls(cmd, key, list)
  local replies = {}
  for i = 1, #list, 1000 do
    local r = redis.call(cmd, key, unpack(list, i, math.min(i + 999, #list)))
    if type(r) == 'table' then
      for _, v in ipairs(r) do replies[#replies + 1] = v end
    end
  end
  return replies
end
`

// createScript: ARGV 2 token hash, 3 lease value "1 <node>", 4 lease ms,
// 5 window ms, 6 info, 7 the writer's clock in ms (the field x: see
// writeScript).
var createScript = redis.NewScript(luaCheck + `
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('TETHER_EXISTS') end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'token', ARGV[2], 'epoch', '1', 'sent', '0', 'acked', '0', 'received', '0', 'info', ARGV[6], 'x', ARGV[7])
redis.call('SET', KEYS[4], ARGV[3], 'PX', ARGV[4])
keep(ARGV[5])
return 1
`)

// writeScript: ARGV 2 epoch, 3 lease value, 4 lease ms, 5 window ms,
// 6 the writer's clock in ms, 7 refresh ms, 8 message count n, then n
// triples (number, type, data), then acked, received, subscribe count,
// then a pair (topic, presence info) for each, unsubscribe count, topics,
// topic offset count m, then m pairs (topic, offset). Numbers are decimal
// strings; "" for acked or received leaves it as it is. A topic's offset
// is the state's field "o:<topic>", set only when higher than the stored
// one, and dropped when the topic is left; its presence info is the field
// "i:<topic>", set when the topic is joined with info, dropped when it is
// joined without ("") or left.
//
// The script reads the state's fields in one HMGET and sets them in one
// HSET. It sets the keys' expiry to the window again (keep) only when the
// state's field x, the writer's clock when a write last did, is more than
// refresh ms old (or ahead of the clock, or missing): a busy session's
// writes do not set it each time. A key the write makes (the out stream's
// first message, the topics set) gets its expiry at once.
var writeScript = redis.NewScript(luaCheck + `
local n = tonumber(ARGV[8])
local ackAt = 9 + 3 * n
local sub = ackAt + 2
local unsub = sub + 2 * tonumber(ARGV[sub]) + 1
local offs = unsub + tonumber(ARGV[unsub]) + 1
local m = tonumber(ARGV[offs])
local names = {'v', 'epoch', 'sent', 'acked', 'received', 'x', 'released'}
for k = 1, m do names[7 + k] = 'o:' .. ARGV[offs - 1 + 2 * k] end
local st = calls('HMGET', KEYS[1], names)
if not st[1] then return redis.error_reply('TETHER_NOTFOUND') end
if st[1] ~= ARGV[1] then return redis.error_reply('TETHER_VERSION ' .. st[1]) end
if not st[2] then return redis.error_reply('TETHER_CORRUPT no epoch') end
if st[2] ~= ARGV[2] or st[7] == ARGV[2] then return redis.error_reply('TETHER_FENCED ' .. st[2]) end
local sent, acked, received = tonumber(st[3]), tonumber(st[4]), tonumber(st[5])
if not sent or not acked or not received then return redis.error_reply('TETHER_CORRUPT counters') end
local newSent, newSentText = sent, nil
if n > 0 then
  local first = tonumber(ARGV[9])
  if first > sent + 1 then return redis.error_reply('TETHER_ORDER message ' .. ARGV[9] .. ' follows ' .. st[3]) end
  local last = tonumber(ARGV[9 + 3 * (n - 1)])
  if last > sent then newSent, newSentText = last, ARGV[9 + 3 * (n - 1)] end
end
local newAcked = ARGV[ackAt]
if newAcked ~= '' and tonumber(newAcked) > newSent then
  return redis.error_reply('TETHER_ORDER acknowledged ' .. newAcked .. ' of ' .. tostring(newSent))
end
for k = 0, n - 1 do
  local j = 9 + 3 * k
  if tonumber(ARGV[j]) > sent then
    redis.call('XADD', KEYS[2], ARGV[j] .. '-0', 't', ARGV[j + 1], 'd', ARGV[j + 2])
  end
end
local set = {}
if newSentText then set[#set + 1] = 'sent'; set[#set + 1] = newSentText end
if newAcked ~= '' and tonumber(newAcked) > acked then
  redis.call('XTRIM', KEYS[2], 'MINID', newAcked .. '-1')
  set[#set + 1] = 'acked'; set[#set + 1] = newAcked
end
local newReceived = ARGV[ackAt + 1]
if newReceived ~= '' and tonumber(newReceived) > received then
  set[#set + 1] = 'received'; set[#set + 1] = newReceived
end
local left = {}
for k = 1, tonumber(ARGV[unsub]) do left[ARGV[unsub + k]] = true end
for k = 1, m do
  local t, o = ARGV[offs - 1 + 2 * k], ARGV[offs + 2 * k]
  local cur = st[7 + k]
  if not left[t] and (not cur or tonumber(o) > tonumber(cur)) then
    set[#set + 1] = 'o:' .. t; set[#set + 1] = o
  end
end
local now, x = tonumber(ARGV[6]), tonumber(st[6])
local refresh = not x or now < x or now - x >= tonumber(ARGV[7])
if refresh then set[#set + 1] = 'x'; set[#set + 1] = ARGV[6] end
local joined, leaving, dropped = {}, {}, {}
for k = 1, tonumber(ARGV[sub]) do
  local t, info = ARGV[sub + 2 * k - 1], ARGV[sub + 2 * k]
  joined[k] = t
  if info ~= '' then
    set[#set + 1] = 'i:' .. t; set[#set + 1] = info
  else
    dropped[#dropped + 1] = 'i:' .. t
  end
end
for k = 1, tonumber(ARGV[unsub]) do
  local t = ARGV[unsub + k]
  leaving[k] = t
  dropped[#dropped + 1] = 'o:' .. t; dropped[#dropped + 1] = 'i:' .. t
end
calls('HSET', KEYS[1], set)
calls('SADD', KEYS[3], joined)
calls('SREM', KEYS[3], leaving)
calls('HDEL', KEYS[1], dropped)
redis.call('SET', KEYS[4], ARGV[3], 'PX', ARGV[4])
if refresh then
  keep(ARGV[5])
else
  if sent == 0 and newSentText then redis.call('PEXPIRE', KEYS[2], ARGV[5]) end
  if #joined > 0 then redis.call('PEXPIRE', KEYS[3], ARGV[5]) end
end
return 1
`)

// renewScript: ARGV 2 epoch, 3 lease value, 4 lease ms, 5 window ms.
var renewScript = redis.NewScript(luaCheck + `
local err = check(ARGV[2])
if err then return redis.error_reply(err) end
redis.call('SET', KEYS[4], ARGV[3], 'PX', ARGV[4])
keep(ARGV[5])
return 1
`)

// releaseScript: ARGV 2 epoch. The lease ends now, for good: the state's
// field released holds its epoch, which check and writeScript then fence,
// so that a write or renewal in flight does not bring the lease back. The
// state stays.
var releaseScript = redis.NewScript(luaCheck + `
local err = check(ARGV[2])
if err then return redis.error_reply(err) end
redis.call('HSET', KEYS[1], 'released', ARGV[2])
redis.call('DEL', KEYS[4])
return 1
`)

// deleteScript: ARGV 2 epoch.
var deleteScript = redis.NewScript(luaCheck + `
local err = check(ARGV[2])
if err then return redis.error_reply(err) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return 1
`)

// takeOverScript: ARGV 2 token hash, 3 node, 4 lease ms, 5 window ms,
// 6 the taker's clock in ms (the field x: see writeScript).
// Returns {epoch, state hash as flat pairs, out entries, topics}. State
// whose counters do not decode or do not match the stored messages is
// refused before the lease changes, so that a TakeOver that returns
// cluster.ErrStateCorrupt changes nothing.
var takeOverScript = redis.NewScript(luaCheck + `
local st = redis.call('HMGET', KEYS[1], 'v', 'token', 'epoch')
if not st[1] then return redis.error_reply('TETHER_NOTFOUND') end
if st[1] ~= ARGV[1] then return redis.error_reply('TETHER_VERSION ' .. st[1]) end
if not st[2] then return redis.error_reply('TETHER_CORRUPT no token') end
if st[2] ~= ARGV[2] then return redis.error_reply('TETHER_TOKEN') end
if not st[3] then return redis.error_reply('TETHER_CORRUPT no epoch') end
local c = redis.call('HMGET', KEYS[1], 'sent', 'acked', 'received')
local sent, acked = tonumber(c[1]), tonumber(c[2])
if not sent or not acked or not tonumber(c[3]) or acked > sent then return redis.error_reply('TETHER_CORRUPT counters') end
if redis.call('XLEN', KEYS[2]) ~= sent - acked then return redis.error_reply('TETHER_CORRUPT messages') end
local cur = redis.call('GET', KEYS[4])
if cur then
  local sp = string.find(cur, ' ', 1, true)
  if not sp then return redis.error_reply('TETHER_CORRUPT lease') end
  if string.sub(cur, sp + 1) ~= ARGV[3] or string.sub(cur, 1, sp - 1) ~= st[3] then
    return redis.error_reply('TETHER_OWNED ' .. string.sub(cur, sp + 1))
  end
else
  redis.call('HINCRBY', KEYS[1], 'epoch', 1)
  redis.call('HDEL', KEYS[1], 'released')
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
redis.call('HSET', KEYS[1], 'x', ARGV[6])
redis.call('SET', KEYS[4], epoch .. ' ' .. ARGV[3], 'PX', ARGV[4])
keep(ARGV[5])
return {epoch, redis.call('HGETALL', KEYS[1]), redis.call('XRANGE', KEYS[2], '-', '+'), redis.call('SMEMBERS', KEYS[3])}
`)

// loadScript: no ARGV besides the version. Returns what takeOverScript
// returns, changing nothing; the epoch is the stored one.
var loadScript = redis.NewScript(luaCheck + `
local st = redis.call('HMGET', KEYS[1], 'v', 'epoch')
if not st[1] then return redis.error_reply('TETHER_NOTFOUND') end
if st[1] ~= ARGV[1] then return redis.error_reply('TETHER_VERSION ' .. st[1]) end
if not st[2] then return redis.error_reply('TETHER_CORRUPT no epoch') end
return {st[2], redis.call('HGETALL', KEYS[1]), redis.call('XRANGE', KEYS[2], '-', '+'), redis.call('SMEMBERS', KEYS[3])}
`)
