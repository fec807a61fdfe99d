"""The sev1 checklist's checks in Redis, beside the incident (same hash tag):

  {inc:<id>}:checks   hash: `result:<step>` (a CheckResult as JSON), `person:<step>` ("ticked" or
                      "unticked": the last thing a person did to that box), `run:by`, `run:at`,
                      `run:ms` (the last run: who asked, when it finished, how long it took)
  {inc:<id>}:checking string, short-lived: a run is under way (one at a time per incident); its
                      value is the run's token: only the run holding it writes its results

The ticks themselves stay in the incident's hash (`check:<step>`). Each change is one script, so
a person's click and a run applying its results never interleave: a person's click writes
`person:<step>` and `check:<step>` together (`person_tick`); the bot ticks a box only while no
person has touched it and nobody ticked it (`bot_tick`), and clears its own tick only while it
is still the bot's and no person touched the box (`clear_bot_check`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from approvals.models import from_ms, utc_ms
from commands.incidents.models import BOT, Check, check_value
from commands.outage.models import CheckResult
from core.redis import RedisClient, call, redis_key

RETENTION_MS = 90 * 24 * 3600 * 1000  # as the incident (IncidentStore.RETENTION)

# KEYS: the incident's hash, its checks hash; ARGV: step, the bot's name. Deletes the tick only
# if the bot's and no person touched the box.
_CLEAR_BOT = """
if redis.call('HEXISTS', KEYS[2], 'person:' .. ARGV[1]) == 1 then return 0 end
local raw = redis.call('HGET', KEYS[1], 'check:' .. ARGV[1])
if not raw then return 0 end
if cjson.decode(raw).by ~= ARGV[2] then return 0 end
return redis.call('HDEL', KEYS[1], 'check:' .. ARGV[1])
"""

# KEYS: the incident's hash, its checks hash; ARGV: step, the bot's check (JSON). Ticks only a
# box no person touched and nobody ticked.
_BOT_TICK = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[2], 'person:' .. ARGV[1]) == 1 then return 0 end
return redis.call('HSETNX', KEYS[1], 'check:' .. ARGV[1], ARGV[2])
"""

# KEYS: the incident's hash, its checks hash; ARGV: step, "ticked" or "unticked", the person's
# check (JSON, "" on untick), retention ms, the bot's name. The person's mark and the box in one
# go. Returns UNCHANGED, CHANGED, or TOOK_OVER (ticked a box the bot had ticked: now theirs).
_PERSON = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], 'person:' .. ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local field = 'check:' .. ARGV[1]
if ARGV[2] == 'unticked' then return redis.call('HDEL', KEYS[1], field) end
local raw = redis.call('HGET', KEYS[1], field)
if raw and cjson.decode(raw).by ~= ARGV[5] then return 0 end
redis.call('HSET', KEYS[1], field, ARGV[3])
if raw then return 2 end
return 1
"""
UNCHANGED, CHANGED, TOOK_OVER = 0, 1, 2

# KEYS: the checks hash, the run's claim; ARGV: token, retention ms, then field, value pairs.
# A run's results, only while it still holds its claim (an older run whose claim lapsed, slowed
# by Slack, say, never overwrites a newer run's); the claim is then let go.
_FINISH = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
return 1
"""

# KEYS: the run's claim; ARGV: token. Lets go of the claim only if it is still this run's.
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""


def _keys(incident_id: str) -> tuple[str, str, str]:
    base = redis_key(f"{{inc:{incident_id}}}")
    return base, base + ":checks", base + ":checking"


@dataclass(frozen=True)
class Diagnosis:
    """What the checks found last, and what people did to the boxes."""

    results: dict[str, CheckResult] = field(default_factory=dict)
    people: dict[str, bool] = field(default_factory=dict)  # step -> ticked (True) / unticked
    run_by: str = ""  # who asked for the last run ("" on declare)
    run_at: datetime | None = None
    run_ms: float = 0.0
    running: bool = False


class ChecklistStore:
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    async def diagnosis(self, incident_id: str) -> Diagnosis:
        _, checks, checking = _keys(incident_id)

        async def read() -> tuple[dict[str, str], int]:
            fields = cast("dict[str, str]", await self._redis.hgetall(checks))
            running: int = await self._redis.exists(checking)
            return fields, running

        fields, running = await call(read)
        results = {
            key[7:]: CheckResult.model_validate_json(raw)
            for key, raw in fields.items()
            if key.startswith("result:")
        }
        people = {
            key[7:]: raw == "ticked" for key, raw in fields.items() if key.startswith("person:")
        }
        at = fields.get("run:at")
        return Diagnosis(
            results=results,
            people=people,
            run_by=fields.get("run:by", ""),
            run_at=from_ms(at) if at else None,
            run_ms=float(fields.get("run:ms") or 0.0),
            running=bool(running),
        )

    async def start(self, incident_id: str, seconds: float) -> str | None:
        """Claim the run: its token, or None when one is already under way (it ends within
        `seconds`, when its claim lapses)."""
        _, _, checking = _keys(incident_id)
        token = secrets.token_hex(8)
        claimed = await call(
            lambda: self._redis.set(checking, token, nx=True, px=max(int(seconds * 1000), 1))
        )
        return token if claimed else None

    async def finish(
        self,
        incident_id: str,
        token: str,
        results: dict[str, CheckResult],
        *,
        by: str,
        at: datetime,
        ms: float,
    ) -> bool:
        """Write the run's results and let go of its claim, in one script; False (nothing
        written) when the claim is no longer this run's: it lapsed and a newer run may hold it."""
        _, checks, checking = _keys(incident_id)
        pairs: list[str | int] = [token, RETENTION_MS]
        for step, result in results.items():
            pairs += [f"result:{step}", result.model_dump_json()]
        pairs += ["run:by", by, "run:at", str(utc_ms(at)), "run:ms", str(ms)]
        written = await call(lambda: self._redis.eval(_FINISH, 2, checks, checking, *pairs))
        return bool(written)

    async def release(self, incident_id: str, token: str) -> None:
        """A run that failed half-way: let the next one start (if the claim is still its own)."""
        _, _, checking = _keys(incident_id)
        await call(lambda: self._redis.eval(_RELEASE, 1, checking, token))

    async def person_tick(self, incident_id: str, step: str, check: Check | None) -> int:
        """A person ticked (`check`) or unticked (None) `step`: the box and the person's mark in
        one script; the bot leaves that box alone from now on. UNCHANGED when the box already
        was so (or a person's tick is already there), CHANGED, or TOOK_OVER (the bot's tick is
        now the person's)."""
        incident, checks, _ = _keys(incident_id)
        mark = "ticked" if check is not None else "unticked"
        value = check_value(check) if check is not None else ""
        args: list[str | int] = [step, mark, value, RETENTION_MS, BOT]
        changed = await call(lambda: self._redis.eval(_PERSON, 2, incident, checks, *args))
        return int(changed)

    async def bot_tick(self, incident_id: str, step: str, check: Check) -> bool:
        """The bot ticks `step`, only if no person touched it and it is not ticked."""
        incident, checks, _ = _keys(incident_id)
        added = await call(
            lambda: self._redis.eval(_BOT_TICK, 2, incident, checks, step, check_value(check))
        )
        return bool(added)

    async def person(self, incident_id: str, step: str, *, ticked: bool) -> None:
        """Record only a person's mark on `step` (the box itself unchanged)."""
        _, checks, _ = _keys(incident_id)

        async def write() -> None:
            await self._redis.hset(checks, f"person:{step}", "ticked" if ticked else "unticked")
            await self._redis.pexpire(checks, RETENTION_MS)

        await call(write)

    async def clear_bot_check(self, incident_id: str, step: str) -> bool:
        """Untick `step` if the bot ticked it (a person's tick is never cleared here)."""
        incident, checks, _ = _keys(incident_id)
        removed = await call(lambda: self._redis.eval(_CLEAR_BOT, 2, incident, checks, step, BOT))
        return bool(removed)
