"""Lua scripts for the request state machine. Each transition is one script: one round trip,
atomic on the server, so exactly one caller wins however many replicas click at once.

Every script takes KEYS[1] = the request hash and KEYS[2] = its event list; both carry the
hash tag `{req:<id>}` so they live in one slot and the scripts run on Redis Cluster. Each
returns `{status, <HGETALL of the request>}` so the caller needs no second read.

Time comes from Redis `TIME`, not from the replica that calls: leases and expiry are compared
on one clock however far the replicas' clocks drift. The last ARGV of every script is a skew
in milliseconds added to it — 0 in production; tests with a manual clock pass the difference
between their clock and the wall clock, so one code path serves both.
"""

from __future__ import annotations

# Shared helpers, prepended to every script.
_PRELUDE = """
local k, ev = KEYS[1], KEYS[2]
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[#ARGV])
end
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

# Every ARGV list below ends with skew_ms (see the module docstring).

# ARGV: user, environments the user may approve in (comma-separated), retention_ms, skew_ms
APPROVE = (
    _PRELUDE
    + """
if redis.call('EXISTS', k) == 0 then return {'missing'} end
local user, now, retention = ARGV[1], clock(), tonumber(ARGV[3])
local state = redis.call('HGET', k, 'state')
if state == 'new' then return reply('not_ready') end
if state ~= 'pending' then return reply('decided') end
if expire_if_due(now, retention) then return reply('expired') end
if redis.call('HGET', k, 'requester') == user then return reply('self') end
if not eligible(ARGV[2]) then return reply('not_approver') end
local approvals = cjson.decode(redis.call('HGET', k, 'approvals'))
for _, a in ipairs(approvals) do
  if a.user == user then return reply('duplicate') end
end
table.insert(approvals, {user = user, at = now})
redis.call('HSET', k, 'approvals', cjson.encode(approvals))
if #approvals >= tonumber(redis.call('HGET', k, 'required')) then
  redis.call('HSET', k, 'approved_ms', now)
  move('approved', user, now, nil)
  return reply('approved')
end
redis.call('HINCRBY', k, 'version', 1)
log('approval', user, now, nil)
return reply('recorded')
"""
)

# ARGV: user, environments the user may approve in (comma-separated), retention_ms, note, skew_ms
DENY = (
    _PRELUDE
    + """
if redis.call('EXISTS', k) == 0 then return {'missing'} end
local user, now, retention = ARGV[1], clock(), tonumber(ARGV[3])
local state = redis.call('HGET', k, 'state')
if state == 'new' then return reply('not_ready') end
if state ~= 'pending' then return reply('decided') end
if expire_if_due(now, retention) then return reply('expired') end
if redis.call('HGET', k, 'requester') == user then return reply('self') end
if not eligible(ARGV[2]) then return reply('not_approver') end
move('denied', user, now, ARGV[4])
retain(retention)
return reply('denied')
"""
)

# ARGV: user, retention_ms, skew_ms
CANCEL = (
    _PRELUDE
    + """
if redis.call('EXISTS', k) == 0 then return {'missing'} end
local user, now, retention = ARGV[1], clock(), tonumber(ARGV[2])
local state = redis.call('HGET', k, 'state')
if state == 'new' then return reply('not_ready') end
if state ~= 'pending' then return reply('decided') end
if expire_if_due(now, retention) then return reply('expired') end
if redis.call('HGET', k, 'requester') ~= user then return reply('not_requester') end
move('cancelled', user, now, 'cancelled by the requester')
retain(retention)
return reply('cancelled')
"""
)

# End a request nobody may act on (its card could not be posted or recorded), from any state
# before a claim: new, pending or approved -> cancelled. After this no sweeper and no click can
# run it, so "nothing was changed" is true. ARGV: user, note, retention_ms, skew_ms
ABANDON = (
    _PRELUDE
    + """
if redis.call('EXISTS', k) == 0 then return {'missing'} end
local state = redis.call('HGET', k, 'state')
if state == 'cancelled' then return reply('cancelled') end  -- a retried call
if state ~= 'new' and state ~= 'pending' and state ~= 'approved' then return reply('decided') end
move('cancelled', ARGV[1], clock(), ARGV[2])
retain(tonumber(ARGV[3]))
return reply('cancelled')
"""
)

# Start execution: approved -> executing under a lease. ARGV: token, lease_ms, skew_ms
CLAIM = (
    _PRELUDE
    + """
if redis.call('EXISTS', k) == 0 then return {'missing'} end
local now = clock()
local state = redis.call('HGET', k, 'state')
-- A retried call (the reply was lost) finds its own claim: answer as the first time.
if state == 'executing' and redis.call('HGET', k, 'lease_token') == ARGV[1] then
  return reply('claimed')
end
if state ~= 'approved' then return reply('decided') end
redis.call('HSET', k, 'lease_token', ARGV[1], 'lease_until', now + tonumber(ARGV[2]))
move('executing', '', now, nil)
return reply('claimed')
"""
)

# The executor's checkpoint: is the claim still ours (state executing, our token)? If so the
# lease is extended in the same step. Once the sweeper has marked the request in doubt this
# answers 'lost' and the executor stops. ARGV: token, lease_ms, skew_ms
EXTEND = (
    _PRELUDE
    + """
if redis.call('EXISTS', k) == 0 then return {'missing'} end
if redis.call('HGET', k, 'state') ~= 'executing' or
   redis.call('HGET', k, 'lease_token') ~= ARGV[1] then return reply('lost') end
local now = clock()
-- checked_ms: Redis's time of this check, which the gate judges expiry and freezes by.
redis.call('HSET', k, 'lease_until', now + tonumber(ARGV[2]), 'checked_ms', now)
return reply('extended')
"""
)

# Record the outcome. ARGV: token, succeeded|failed, outcome, retention_ms, skew_ms
FINISH = (
    _PRELUDE
    + """
if redis.call('EXISTS', k) == 0 then return {'missing'} end
local now = clock()
local state = redis.call('HGET', k, 'state')
if redis.call('HGET', k, 'lease_token') ~= ARGV[1] then return reply('lost') end
if state == 'in_doubt' then
  -- The lease lapsed and the request was marked in doubt; keep that state (never re-run),
  -- but keep the late report for whoever checks.
  redis.call('HSET', k, 'late_outcome', ARGV[2] .. ': ' .. ARGV[3])
  redis.call('HINCRBY', k, 'version', 1)
  log('late_outcome', '', now, ARGV[2] .. ': ' .. ARGV[3])
  return reply('late')
end
if state == ARGV[2] then return reply(ARGV[2]) end  -- a retried call: already recorded
if state ~= 'executing' then return reply('lost') end
move(ARGV[2], '', now, ARGV[3])
retain(tonumber(ARGV[4]))
return reply(ARGV[2])
"""
)

# The sweeper's look at one request. ARGV: retention_ms, orphan_after_ms, skew_ms
# Returns expired | in_doubt | orphan (approved, never claimed) | final | wait.
SWEEP = (
    _PRELUDE
    + """
if redis.call('EXISTS', k) == 0 then return {'missing'} end
local now, retention = clock(), tonumber(ARGV[1])
local state = redis.call('HGET', k, 'state')
if state == 'pending' or state == 'new' then
  -- A new request (card not posted yet) is never run by the sweeper: it only expires.
  if expire_if_due(now, retention) then return reply('expired') end
  return reply('wait')
end
if state == 'executing' then
  if now > tonumber(redis.call('HGET', k, 'lease_until')) then
    if redis.call('HGET', k, 'resumable') == '1' and
       tonumber(redis.call('HGET', k, 'resumes') or '0') < 3 then
      -- Its executor stopped answering; its steps look before they act, so another replica
      -- resumes it (three times at most: one that kills every replica goes in doubt). The
      -- old claim token is void: a stalled executor's next checkpoint fails.
      redis.call('HINCRBY', k, 'resumes', 1)
      redis.call('HSET', k, 'resumed_ms', now, 'lease_token', '')
      move('approved', '', now, nil)
      return reply('resumed')
    end
    move('in_doubt', '', now, 'outcome unknown — check status')
    retain(retention)
    return reply('in_doubt')
  end
  return reply('wait')
end
if state == 'approved' then
  local since = tonumber(redis.call('HGET', k, 'approved_ms') or '0')
  local approvals = cjson.decode(redis.call('HGET', k, 'approvals'))
  for _, a in ipairs(approvals) do if a.at > since then since = a.at end end
  if now - since > tonumber(ARGV[2]) then return reply('orphan') end
  return reply('wait')
end
return reply('final')
"""
)

# Record where the card is, and open the request for what comes next: new -> pending (it
# needs approvals) or new -> approved (the environment needs none; only now may anyone run
# it). A retried call (the reply was lost) answers as the first time.
# ARGV: channel, ts, skew_ms
SET_CARD = (
    _PRELUDE
    + """
if redis.call('EXISTS', k) == 0 then return {'missing'} end
local now = clock()
redis.call('HSET', k, 'channel', ARGV[1], 'ts', ARGV[2])
local state = redis.call('HGET', k, 'state')
if state == 'new' then
  if tonumber(redis.call('HGET', k, 'required')) == 0 then
    redis.call('HSET', k, 'approved_ms', now)
    move('approved', '', now, nil)
    return reply('approved')
  end
  move('pending', '', now, nil)
  return reply('ok')
end
redis.call('HINCRBY', k, 'version', 1)
if state == 'approved' and tonumber(redis.call('HGET', k, 'required')) == 0 then
  return reply('approved')
end
return reply('ok')
"""
)

# Record a note beside the request (e.g. the rollout's outcome). ARGV: field, value, skew_ms
ANNOTATE = (
    _PRELUDE
    + """
if redis.call('EXISTS', k) == 0 then return {'missing'} end
redis.call('HSET', k, ARGV[1], ARGV[2])
redis.call('HINCRBY', k, 'version', 1)
return reply('ok')
"""
)
