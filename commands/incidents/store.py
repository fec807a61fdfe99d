"""Incidents in Redis, so any replica serves any command.

Keys (prefix `dhanam:`):
  {inc:<id>}              hash: the incident (checklist ticks as `check:<item>` fields)
  {inc:<id>}:timeline     stream: what happened, who, when
  {inc:<id>}:checks       hash: the sev1 checklist's checks (checklist_store.py)
  incidents:channel:<C…>  string: the incident of an incident channel
  incidents:active        sorted set: open incidents (reminders)
  incidents:pd_retry      sorted set: incident id -> when to retry its PagerDuty event
  incidents:pd:<PD id>    string: our incident for a PagerDuty incident id
  pd:event:<event id>     string, 7 days: a webhook delivery already processed
  pd:msg:<PD id>          hash: channel and ts of the message about a PagerDuty incident

Every Redis failure surfaces as StoreUnavailableError.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from approvals.models import from_ms, utc_ms
from commands.incidents.checklist_store import ChecklistStore
from commands.incidents.models import Check, Incident, check_value, from_hash, to_hash
from commands.requests import IncidentState
from core.errors import StoreUnavailableError
from core.redis import RedisClient, call, redis_key

ACTIVE_KEY = redis_key("incidents", "active")
RETRY_KEY = redis_key("incidents", "pd_retry")
TIMELINE_MAX = 2000
DELIVERY_TTL = timedelta(days=7)
DELIVERY_CLAIM = timedelta(seconds=60)  # until the delivery is recorded (see first_delivery)
RETENTION = timedelta(days=90)

_SET_STATUS = """
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return 'missing' end
if cur == 'resolved' then return 'resolved' end
if cur == ARGV[1] then return 'same' end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
return 'ok'
"""


def incident_key(incident_id: str) -> str:
    return redis_key(f"{{inc:{incident_id}}}")


# KEYS: timeline, its "once" set; ARGV: id, at, by, text, maxlen, ttl_s
_ADD_ONCE = """
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[2], ARGV[6])
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], '*', 'at', ARGV[2], 'by', ARGV[3],
  'text', ARGV[4])
return 1
"""


def timeline_key(incident_id: str) -> str:
    return incident_key(incident_id) + ":timeline"


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    by: str  # a Slack user id, or "" for the bot / PagerDuty
    text: str


class IncidentStore:
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self.checklist = ChecklistStore(redis)  # the checklist's checks (checklist_store.py)

    # -- the incident -------------------------------------------------------------------------
    async def create(self, incident: Incident) -> None:
        async def write() -> None:
            mapping: dict[Any, Any] = to_hash(incident)
            await self._redis.hset(incident_key(incident.id), mapping=mapping)
            await self._redis.set(redis_key("incidents", "channel", incident.channel), incident.id)
            await self._redis.zadd(ACTIVE_KEY, {incident.id: utc_ms(incident.started_at)})

        await call(write)

    async def get(self, incident_id: str) -> Incident | None:
        fields = cast(
            "dict[str, str]", await call(lambda: self._redis.hgetall(incident_key(incident_id)))
        )
        return from_hash(fields) if fields else None

    async def by_channel(self, channel: str) -> Incident | None:
        found = cast(
            "str | None",
            await call(lambda: self._redis.get(redis_key("incidents", "channel", channel))),
        )
        return await self.get(found) if found else None

    async def save(self, incident: Incident, *names: str) -> None:
        """Write the named fields of ``incident`` (field-level, so concurrent edits of other
        fields are not lost)."""
        full = to_hash(incident)
        mapping: dict[Any, Any] = {name: full[name] for name in names}
        if mapping:
            await call(lambda: self._redis.hset(incident_key(incident.id), mapping=mapping))

    async def set_status(self, incident_id: str, state: IncidentState) -> str:
        """``ok``, ``same``, ``resolved`` (already, nothing changed) or ``missing``. Atomic:
        of two concurrent resolves exactly one gets ``ok``."""
        result: str = await call(
            lambda: self._redis.eval(_SET_STATUS, 1, incident_key(incident_id), state.value)
        )
        return result

    async def set_check(self, incident_id: str, item: str, check: Check | None) -> bool:
        """Tick (or untick, with None); False when it already was so."""
        key, field = incident_key(incident_id), f"check:{item}"
        if check is None:
            removed: int = await call(lambda: self._redis.hdel(key, field))
            return bool(removed)
        added: int = await call(lambda: self._redis.hsetnx(key, field, check_value(check)))
        return bool(added)

    # -- the timeline -------------------------------------------------------------------------
    async def add_timeline(
        self, incident_id: str, at: datetime, by: str, text: str, *, once: str = ""
    ) -> None:
        """Append a line. With ``once`` (a webhook's event id) the line is added at most once
        per id, in one script: a redelivery after a failure half-way never doubles it."""
        if once:
            keys = [timeline_key(incident_id), timeline_key(incident_id) + ":once"]
            args: list[str | int] = [
                once,
                str(utc_ms(at)),
                by,
                text,
                TIMELINE_MAX,
                int(DELIVERY_TTL.total_seconds()),
            ]
            await call(lambda: self._redis.eval(_ADD_ONCE, 2, *keys, *args))
            return
        fields: dict[Any, Any] = {"at": str(utc_ms(at)), "by": by, "text": text}
        await call(
            lambda: self._redis.xadd(
                timeline_key(incident_id), fields, maxlen=TIMELINE_MAX, approximate=True
            )
        )

    async def note_posted(self, event_id: str) -> bool:
        """Whether the PagerDuty note of ``event_id`` was posted to Slack already."""
        found = await call(lambda: self._redis.exists(redis_key("pd", "note", event_id)))
        return bool(found)

    async def mark_note_posted(self, event_id: str) -> None:
        ttl = int(DELIVERY_TTL.total_seconds())
        await call(lambda: self._redis.set(redis_key("pd", "note", event_id), "1", ex=ttl))

    async def timeline(self, incident_id: str) -> list[TimelineEntry]:
        raw = cast(
            "list[tuple[str, dict[str, str]]]",
            await call(lambda: self._redis.xrange(timeline_key(incident_id))),
        )
        return [
            TimelineEntry(at=from_ms(f["at"]), by=f.get("by", ""), text=f.get("text", ""))
            for _id, f in raw
        ]

    # -- indexes ------------------------------------------------------------------------------
    async def active_ids(self) -> list[str]:
        return cast("list[str]", await call(lambda: self._redis.zrange(ACTIVE_KEY, 0, -1)))

    async def close(self, incident: Incident) -> None:
        """Resolved: off the reminder index; kept for RETENTION."""
        ttl = int(RETENTION.total_seconds() * 1000)

        async def write() -> None:
            await self._redis.zrem(ACTIVE_KEY, incident.id)
            await self._redis.pexpire(incident_key(incident.id), ttl)
            await self._redis.pexpire(timeline_key(incident.id), ttl)

        await call(write)

    async def schedule_pd(self, incident_id: str, due: datetime) -> None:
        await call(lambda: self._redis.zadd(RETRY_KEY, {incident_id: utc_ms(due)}))

    async def unschedule_pd(self, incident_id: str) -> None:
        await call(lambda: self._redis.zrem(RETRY_KEY, incident_id))

    async def due_pd(self, now: datetime) -> list[str]:
        return cast(
            "list[str]",
            await call(lambda: self._redis.zrangebyscore(RETRY_KEY, "-inf", utc_ms(now))),
        )

    async def link_pd(self, pd_incident_id: str, incident_id: str) -> None:
        await call(
            lambda: self._redis.set(redis_key("incidents", "pd", pd_incident_id), incident_id)
        )

    async def by_pd(self, pd_incident_id: str) -> Incident | None:
        found = cast(
            "str | None",
            await call(lambda: self._redis.get(redis_key("incidents", "pd", pd_incident_id))),
        )
        return await self.get(found) if found else None

    # -- webhook deliveries and PagerDuty-only messages ---------------------------------------
    async def first_delivery(self, event_id: str) -> bool:
        """True the first time ``event_id`` is seen: retries are processed once. The claim is
        short-lived until `delivered` confirms it, so a claim whose recording never finished
        (a crash, Redis gone before `forget_delivery`) lapses and PagerDuty's retry gets
        through; a redelivery while it is in progress is told to come back (StoreUnavailable,
        a 503), never that it was done."""
        key = redis_key("pd", "event", event_id)
        claim = int(DELIVERY_CLAIM.total_seconds())
        result = cast(
            "bool | None", await call(lambda: self._redis.set(key, "claimed", nx=True, ex=claim))
        )
        if result:
            return True
        state = cast("str | None", await call(lambda: self._redis.get(key)))
        if state == "claimed":
            raise StoreUnavailableError(f"delivery {event_id} is being recorded; retry later")
        return False

    async def delivered(self, event_id: str) -> None:
        """The delivery is recorded: keep it marked processed for the full retention."""
        ttl = int(DELIVERY_TTL.total_seconds())
        await call(lambda: self._redis.set(redis_key("pd", "event", event_id), "done", ex=ttl))

    async def forget_delivery(self, event_id: str) -> None:
        """Processing failed: let PagerDuty's retry through."""
        await call(lambda: self._redis.delete(redis_key("pd", "event", event_id)))

    async def pd_message(self, pd_incident_id: str) -> tuple[str, str] | None:
        found = cast(
            "dict[str, str]",
            await call(lambda: self._redis.hgetall(redis_key("pd", "msg", pd_incident_id))),
        )
        return (found["channel"], found["ts"]) if found.get("ts") else None

    async def set_pd_message(self, pd_incident_id: str, channel: str, ts: str) -> None:
        key = redis_key("pd", "msg", pd_incident_id)

        async def write() -> None:
            await self._redis.hset(key, mapping={"channel": channel, "ts": ts})
            await self._redis.pexpire(key, int(RETENTION.total_seconds() * 1000))

        await call(write)
