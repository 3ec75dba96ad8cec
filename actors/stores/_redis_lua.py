"""The Lua FUNCTION library of the Redis store: every step that must be atomic is one function here.

Owns: ``LIBRARY`` (the source, loaded with ``FUNCTION LOAD REPLACE`` at open; Functions survive Redis
restarts, unlike the EVAL script cache) and ``LIBRARY_NAME``. Knows the key layout of ``_redis_keys`` (keys
are always passed in KEYS, never built here, except the owner's ring channel, which is not a key) and
nothing of Python.

Errors are replies whose first word says what happened: ``NOSESSION``, ``GAP <last>``, ``STALE <holder>``,
``RANGE <last>``, ``OLDER <upto>``, ``INBOXFULL <len>``; the store maps them to exceptions.
"""

from __future__ import annotations

__all__ = ["LIBRARY", "LIBRARY_NAME"]

LIBRARY_NAME = "supervisor_v1"

LIBRARY = r"""#!lua name=supervisor_v1

-- The lease token of "<node>:<token>", or nil.
local function token_of(holder)
  if not holder then return nil end
  return string.match(holder, ':(%d+)$')
end

local function node_of(holder)
  return string.match(holder, '^(.*):%d+$')
end

-- Refuse unless the lease exists and carries this fence (fence '' = unfenced, single node).
local function check_fence(lease_key, fence)
  if fence == '' then return nil end
  local holder = redis.call('GET', lease_key)
  if not holder then return 'STALE no lease is held' end
  if token_of(holder) ~= fence then return 'STALE lease held by ' .. holder end
  return nil
end

-- KEYS: meta. ARGV: has_owner ('1'/'0'), owner, created_at.
-- Returns {o, c, l, s, u}: the record, new or existing.
local function ss_create(keys, args)
  if redis.call('EXISTS', keys[1]) == 0 then
    if args[1] == '1' then
      redis.call('HSET', keys[1], 'c', args[3], 'l', '-1', 'u', '-1', 'o', args[2])
    else
      redis.call('HSET', keys[1], 'c', args[3], 'l', '-1', 'u', '-1')
    end
  end
  return redis.call('HMGET', keys[1], 'o', 'c', 'l', 's', 'u')
end

-- KEYS: meta, log, lease, inbox. ARGV: fence ('' = unfenced), first id, channel, inbox high-water mark
-- ('' = none), then (event JSON, inbox id or '') per event.
-- Appends entries <id>-1, moves l (and i), trims the inbox up to the mark, publishes the doorbell
-- "<first> <n> <len e1> <len i1> ...\n<e1><i1>..." and returns the number of subscribers reached.
local function ss_append(keys, args)
  local last = redis.call('HGET', keys[1], 'l')
  if not last then return redis.error_reply('NOSESSION') end
  local stale = check_fence(keys[3], args[1])
  if stale then return redis.error_reply(stale) end
  local first = tonumber(args[2])
  if first ~= tonumber(last) + 1 then return redis.error_reply('GAP ' .. last) end
  local n = (#args - 4) / 2
  local header = {tostring(first), tostring(n)}
  local body = {}
  for k = 0, n - 1 do
    local event, inbox_id = args[5 + 2 * k], args[6 + 2 * k]
    if inbox_id == '' then
      redis.call('XADD', keys[2], tostring(first + k) .. '-1', 'e', event)
    else
      redis.call('XADD', keys[2], tostring(first + k) .. '-1', 'e', event, 'i', inbox_id)
    end
    header[#header + 1] = tostring(#event)
    header[#header + 1] = tostring(#inbox_id)
    body[#body + 1] = event
    body[#body + 1] = inbox_id
  end
  if args[4] ~= '' then
    redis.call('HSET', keys[1], 'l', tostring(first + n - 1), 'i', args[4])
    redis.call('XTRIM', keys[4], 'MINID', args[4])
  else
    redis.call('HSET', keys[1], 'l', tostring(first + n - 1))
  end
  return redis.call('PUBLISH', args[3], table.concat(header, ' ') .. '\n' .. table.concat(body))
end

-- KEYS: meta, lease. ARGV: fence ('' = unfenced), snapshot JSON, upto, release ('1'/'0'), and the
-- session's doorbell channel or ''. Fenced: refuses a snapshot older than the stored one, and with release
-- deletes the lease in the same step (passivation hands the session over at once) and, given a channel,
-- publishes "released" on it (nodes serving its connections host it next: a shutdown's hand-over).
local function ss_snapshot(keys, args)
  local last = redis.call('HGET', keys[1], 'l')
  if not last then return redis.error_reply('NOSESSION') end
  local stale = check_fence(keys[2], args[1])
  if stale then return redis.error_reply(stale) end
  local upto = tonumber(args[3])
  if upto < -1 or upto > tonumber(last) then return redis.error_reply('RANGE ' .. last) end
  if args[1] ~= '' then
    local current = tonumber(redis.call('HGET', keys[1], 'u') or '-1')
    if upto < current then return redis.error_reply('OLDER ' .. tostring(current)) end
  end
  redis.call('HSET', keys[1], 's', args[2], 'u', args[3])
  if args[1] ~= '' and args[4] == '1' and redis.call('DEL', keys[2]) == 1 and (args[5] or '') ~= '' then
    redis.call('PUBLISH', args[5], 'released')
  end
  return 1
end

-- KEYS: lease, fence. ARGV: node, ttl ms.
-- Returns {1, token, ttl} when granted, {0, holder, pttl} when another holder has it.
local function ss_acquire(keys, args)
  local holder = redis.call('GET', keys[1])
  if holder then return {0, holder, redis.call('PTTL', keys[1])} end
  local token = redis.call('INCR', keys[2])
  redis.call('SET', keys[1], args[1] .. ':' .. token, 'PX', args[2])
  return {1, token, tonumber(args[2])}
end

-- KEYS: lease. ARGV: "<node>:<token>", ttl ms. 1 when still held (and extended), else 0.
local function ss_renew(keys, args)
  if redis.call('GET', keys[1]) == args[1] then
    redis.call('PEXPIRE', keys[1], args[2])
    return 1
  end
  return 0
end

-- KEYS: lease. ARGV: "<node>:<token>", and optionally the session's doorbell channel. 1 when it was
-- held and is now released (and, given a channel, "released" is published on it), else 0.
local function ss_release(keys, args)
  if redis.call('GET', keys[1]) == args[1] then
    redis.call('DEL', keys[1])
    if args[2] then redis.call('PUBLISH', args[2], 'released') end
    return 1
  end
  return 0
end

-- KEYS: inbox, lease. ARGV: action, max length, session id, ring channel prefix, ring channel suffix,
-- and optionally the entry's field: 'a' (an action, the default) or 'c' (a request to the owner itself).
-- Returns {inbox id, owner node or false, receivers}. The owner's node channel gets the ring
-- "<inbox id> <previous inbox id or 0-0> <field> <session id>\n<text>": the entry itself and the one it
-- follows, so an owner that handed over exactly that previous entry need not read the Stream.
local function ss_route(keys, args)
  local length = redis.call('XLEN', keys[1])
  if length >= tonumber(args[2]) then return redis.error_reply('INBOXFULL ' .. length) end
  local field = args[6] or 'a'
  local prev = '0-0'
  if length > 0 then prev = redis.call('XREVRANGE', keys[1], '+', '-', 'COUNT', 1)[1][1] end
  local id = redis.call('XADD', keys[1], '*', field, args[1])
  local holder = redis.call('GET', keys[2])
  if not holder then return {id, false, 0} end
  local node = node_of(holder)
  local ring = id .. ' ' .. prev .. ' ' .. field .. ' ' .. args[3] .. '\n' .. args[1]
  local receivers = redis.call('PUBLISH', args[4] .. node .. args[5], ring)
  return {id, node, receivers}
end

-- Redis's own clock in ms: watchers' expiries never depend on the nodes' clocks agreeing.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- KEYS: a session's watchers (hash: node -> expiry ms). ARGV: node, ms ('0': remove the node).
-- Records that the node has connections to the session (or had, until ms from now).
local function ss_watch(keys, args)
  local ms = tonumber(args[2])
  if ms <= 0 then return redis.call('HDEL', keys[1], args[1]) end
  redis.call('HSET', keys[1], args[1], tostring(now_ms() + ms))
  if redis.call('PTTL', keys[1]) < ms then redis.call('PEXPIRE', keys[1], ms) end
  return 1
end

-- KEYS: a session's watchers. Returns the ms until the last watcher's expiry (0: none is left), and
-- removes the expired ones.
local function ss_watched(keys, args)
  local now = now_ms()
  local entries = redis.call('HGETALL', keys[1])
  local latest = 0
  for k = 1, #entries, 2 do
    local left = tonumber(entries[k + 1]) - now
    if left <= 0 then
      redis.call('HDEL', keys[1], entries[k])
    elseif left > latest then
      latest = left
    end
  end
  return latest
end

-- KEYS: a user's index (hash). ARGV: session id, "<fence> <activity ms>".
-- Records the session and returns the whole index (field, value, ...), the session included.
local function ss_user_enter(keys, args)
  redis.call('HSET', keys[1], args[1], args[2])
  return redis.call('HGETALL', keys[1])
end

-- KEYS: a user's index. ARGV: (session id, fence) pairs. Removes each entry still written under that
-- fence (an entry a newer lease's owner wrote stays); returns how many were removed.
local function ss_user_forget(keys, args)
  local removed = 0
  for k = 1, #args, 2 do
    local value = redis.call('HGET', keys[1], args[k])
    if value and string.match(value, '^(%d+)') == args[k + 1] then
      removed = removed + redis.call('HDEL', keys[1], args[k])
    end
  end
  return removed
end

redis.register_function('ss_create', ss_create)
redis.register_function('ss_append', ss_append)
redis.register_function('ss_snapshot', ss_snapshot)
redis.register_function('ss_acquire', ss_acquire)
redis.register_function('ss_renew', ss_renew)
redis.register_function('ss_release', ss_release)
redis.register_function('ss_route', ss_route)
redis.register_function('ss_watch', ss_watch)
redis.register_function('ss_watched', ss_watched)
redis.register_function('ss_user_enter', ss_user_enter)
redis.register_function('ss_user_forget', ss_user_forget)
"""
