"""The sev1 checklist's checks in Redis, beside the incident (same hash tag):

  {inc:<id>}:checks   hash: `result:<step>` (a CheckResult as JSON), `person:<step>` ("ticked" or
                      "unticked": the last thing a person did to that box), `run:by`, `run:at`,
                      `run:ms` (the last run: who asked, when it finished, how long it took)
  {inc:<id>}:checking string, short-lived: a run is under way (one at a time per incident)

The ticks themselves stay in the incident's hash (`check:<step>`, IncidentStore.set_check); the
bot's own tick is cleared only while it is still the bot's (`clear_bot_check`, one script).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from approvals.models import from_ms, utc_ms
from commands.incidents.models import BOT
from commands.outage.models import CheckResult
from core.redis import RedisClient, call, redis_key

RETENTION_MS = 90 * 24 * 3600 * 1000  # as the incident (IncidentStore.RETENTION)

# KEYS: the incident's hash; ARGV: field, the bot's name. Deletes the tick only if the bot's.
_CLEAR_BOT = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
if cjson.decode(raw).by ~= ARGV[2] then return 0 end
return redis.call('HDEL', KEYS[1], ARGV[1])
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

    async def start(self, incident_id: str, seconds: float) -> bool:
        """Claim the run; False when one is already under way (it ends within `seconds`)."""
        _, _, checking = _keys(incident_id)
        claimed = await call(
            lambda: self._redis.set(checking, "1", nx=True, px=max(int(seconds * 1000), 1))
        )
        return bool(claimed)

    async def finish(
        self, incident_id: str, results: dict[str, CheckResult], *, by: str, at: datetime, ms: float
    ) -> None:
        _, checks, checking = _keys(incident_id)
        mapping: dict[Any, Any] = {
            f"result:{step}": result.model_dump_json() for step, result in results.items()
        }
        mapping.update({"run:by": by, "run:at": str(utc_ms(at)), "run:ms": str(ms)})

        async def write() -> None:
            await self._redis.hset(checks, mapping=mapping)
            await self._redis.pexpire(checks, RETENTION_MS)
            await self._redis.delete(checking)

        await call(write)

    async def release(self, incident_id: str) -> None:
        """A run that failed half-way: let the next one start."""
        _, _, checking = _keys(incident_id)
        await call(lambda: self._redis.delete(checking))

    async def person(self, incident_id: str, step: str, *, ticked: bool) -> None:
        """A person ticked or unticked `step`: the bot leaves that box alone from now on."""
        _, checks, _ = _keys(incident_id)

        async def write() -> None:
            await self._redis.hset(checks, f"person:{step}", "ticked" if ticked else "unticked")
            await self._redis.pexpire(checks, RETENTION_MS)

        await call(write)

    async def clear_bot_check(self, incident_id: str, step: str) -> bool:
        """Untick `step` if the bot ticked it (a person's tick is never cleared here)."""
        incident, _, _ = _keys(incident_id)
        removed = await call(
            lambda: self._redis.eval(_CLEAR_BOT, 1, incident, f"check:{step}", BOT)
        )
        return bool(removed)
