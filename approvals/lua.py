"""Lua scripts for the request state machine. Each transition is one script: one round trip,
atomic on the server, so exactly one caller wins however many replicas click at once.

Every script takes KEYS[1] = the request hash and KEYS[2] = its event list; both carry the
hash tag `{req:<id>}` so they live in one slot and the scripts run on Redis Cluster. Each
returns `{status, <HGETALL of the request>}` so the caller needs no second read.
"""

from __future__ import annotations

# Shared helpers, prepended to every script.
_PRELUDE = """
local k, ev = KEYS[1], KEYS[2]
local function reply(status)
  return {status, unpack(redis.call('HGETALL', k))}
end
local function log(event, user, now, extra)
  local entry = {event = event, user = user, at = now,
                 version = tonumber(redis.call('HGET', k, 'version'))}
  if extra then entry.note = extra end
  redis.call('RPUSH', ev, cjson.encode(entry))
end
local function move(to, user, now, outcome)
  redis.call('HSET', k, 'state', to)
  redis.call('HINCRBY', k, 'version', 1)
  if user ~= '' then redis.call('HSET', k, 'decided_by', user) end
  if outcome then redis.call('HSET', k, 'outcome', outcome) end
  log(to, user, now, outcome)
end
local function retain(ms)
  redis.call('PEXPIRE', k, ms)
  redis.call('PEXPIRE', ev, ms)
end
local function eligible(envs)
  local env = redis.call('HGET', k, 'env')
  for name in string.gmatch(envs, '[^,]+') do
    if name == env then return true end
  end
  return false
end
local function expire_if_due(now, retention)
  if now >= tonumber(redis.call('HGET', k, 'expires_ms')) then
    move('expired', '', now, 'expired unapproved')
    retain(retention)
    return true
  end
  return false
end
"""

# ARGV: user, now_ms, environments the user may approve in (comma-separated), retention_ms
APPROVE = (
    _PRELUDE
    + """
if redis.call('EXISTS', k) == 0 then return {'missing'} end
local user, now, retention = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[4])
if redis.call('HGET', k, 'state') ~= 'pending' then return reply('decided') end
if expire_if_due(now, retention) then return reply('expired') end
if redis.call('HGET', k, 'requester') == user then return reply('self') end
if not eligible(ARGV[3]) then return reply('not_approver') end
local approvals = cjson.decode(redis.call('HGET', k, 'approvals'))
for _, a in ipairs(approvals) do
  if a.user == user then return reply('duplicate') end
end
table.insert(approvals, {user = user, at = now})
redis.call('HSET', k, 'approvals', cjson.encode(approvals))
if #approvals >= tonumber(redis.call('HGET', k, 'required')) then
  move('approved', user, now, nil)
  return reply('approved')
end
redis.call('HINCRBY', k, 'version', 1)
log('approval', user, now, nil)
return reply('recorded')
"""
)

# ARGV: user, now_ms, environments the user may approve in (comma-separated), retention_ms, note
DENY = (
    _PRELUDE
    + """
if redis.call('EXISTS', k) == 0 then return {'missing'} end
local user, now, retention = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[4])
if redis.call('HGET', k, 'state') ~= 'pending' then return reply('decided') end
if expire_if_due(now, retention) then return reply('expired') end
if redis.call('HGET', k, 'requester') == user then return reply('self') end
if not eligible(ARGV[3]) then return reply('not_approver') end
move('denied', user, now, ARGV[5])
retain(retention)
return reply('denied')
"""
)

# ARGV: user, now_ms, retention_ms
CANCEL = (
    _PRELUDE
    + """
if redis.call('EXISTS', k) == 0 then return {'missing'} end
local user, now, retention = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if redis.call('HGET', k, 'state') ~= 'pending' then return reply('decided') end
if expire_if_due(now, retention) then return reply('expired') end
if redis.call('HGET', k, 'requester') ~= user then return reply('not_requester') end
move('cancelled', user, now, 'cancelled by the requester')
retain(retention)
return reply('cancelled')
"""
)

# Start execution: approved -> executing under a lease. ARGV: token, now_ms, lease_ms
CLAIM = (
    _PRELUDE
    + """
if redis.call('EXISTS', k) == 0 then return {'missing'} end
local now = tonumber(ARGV[2])
local state = redis.call('HGET', k, 'state')
-- A retried call (the reply was lost) finds its own claim: answer as the first time.
if state == 'executing' and redis.call('HGET', k, 'lease_token') == ARGV[1] then
  return reply('claimed')
end
if state ~= 'approved' then return reply('decided') end
redis.call('HSET', k, 'lease_token', ARGV[1], 'lease_until', now + tonumber(ARGV[3]))
move('executing', '', now, nil)
return reply('claimed')
"""
)

# Extend the execution lease. ARGV: token, now_ms, lease_ms
EXTEND = (
    _PRELUDE
    + """
if redis.call('EXISTS', k) == 0 then return {'missing'} end
if redis.call('HGET', k, 'state') ~= 'executing' or
   redis.call('HGET', k, 'lease_token') ~= ARGV[1] then return reply('lost') end
redis.call('HSET', k, 'lease_until', tonumber(ARGV[2]) + tonumber(ARGV[3]))
return reply('extended')
"""
)

# Record the outcome. ARGV: token, now_ms, succeeded|failed, outcome, retention_ms
FINISH = (
    _PRELUDE
    + """
if redis.call('EXISTS', k) == 0 then return {'missing'} end
local now = tonumber(ARGV[2])
local state = redis.call('HGET', k, 'state')
if redis.call('HGET', k, 'lease_token') ~= ARGV[1] then return reply('lost') end
if state == 'in_doubt' then
  -- The lease lapsed and the request was marked in doubt; keep that state (never re-run),
  -- but keep the late report for whoever checks.
  redis.call('HSET', k, 'late_outcome', ARGV[3] .. ': ' .. ARGV[4])
  redis.call('HINCRBY', k, 'version', 1)
  log('late_outcome', '', now, ARGV[3] .. ': ' .. ARGV[4])
  return reply('late')
end
if state == ARGV[3] then return reply(ARGV[3]) end  -- a retried call: already recorded
if state ~= 'executing' then return reply('lost') end
move(ARGV[3], '', now, ARGV[4])
retain(tonumber(ARGV[5]))
return reply(ARGV[3])
"""
)

# The sweeper's look at one request. ARGV: now_ms, retention_ms, orphan_after_ms
# Returns expired | in_doubt | orphan (approved, never claimed) | final | wait (with the next
# time to look as the status's second element via the hash's fields).
SWEEP = (
    _PRELUDE
    + """
if redis.call('EXISTS', k) == 0 then return {'missing'} end
local now, retention = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HGET', k, 'state')
if state == 'pending' then
  if expire_if_due(now, retention) then return reply('expired') end
  return reply('wait')
end
if state == 'executing' then
  if now > tonumber(redis.call('HGET', k, 'lease_until')) then
    move('in_doubt', '', now, 'outcome unknown — check status')
    retain(retention)
    return reply('in_doubt')
  end
  return reply('wait')
end
if state == 'approved' then
  local approvals = cjson.decode(redis.call('HGET', k, 'approvals'))
  local last = 0
  for _, a in ipairs(approvals) do if a.at > last then last = a.at end end
  if now - last > tonumber(ARGV[3]) then return reply('orphan') end
  return reply('wait')
end
return reply('final')
"""
)

# Record where the card is. ARGV: channel, ts, now_ms
SET_CARD = (
    _PRELUDE
    + """
if redis.call('EXISTS', k) == 0 then return {'missing'} end
redis.call('HSET', k, 'channel', ARGV[1], 'ts', ARGV[2])
redis.call('HINCRBY', k, 'version', 1)
return reply('ok')
"""
)

# Record a note beside the request (e.g. the rollout's outcome). ARGV: field, value
ANNOTATE = (
    _PRELUDE
    + """
if redis.call('EXISTS', k) == 0 then return {'missing'} end
redis.call('HSET', k, ARGV[1], ARGV[2])
redis.call('HINCRBY', k, 'version', 1)
return reply('ok')
"""
)
