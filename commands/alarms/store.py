"""Alarm state in Redis: per alarm, the newest state by StateChangeTime and where it is shown.

Keys (prefix `dhanam:`). The intake script touches the delivery, the alarm, the reminder
schedule and the outbox together, so those share the hash tag `{alarms}` (one cluster slot):
  {alarms}:alarm:<name>          hash: state, changed_ms, payload (the newest notification),
                                 channel, fired_ms, root_ts/root_kind/root_channel (the message
                                 that shows it: its own root or a digest), shown_state/shown_ms
  {alarms}:firing                sorted set: alarm name -> when its next reminder is due (ms)
  {alarms}:sns:<MessageId>       string: a delivery already processed (1 day)
  {alarms}:outbox:…              the Slack outbox (integrations.slack.outbox)
  alarmch:<channel>:recent       sorted set: alarms that got a root lately (storm detection)
  alarmch:<channel>:digest       string: ts of the channel's open digest (expires when quiet)
  {alarmdigest:<channel>:<ts>}   sorted set: the digest's alarms, in the order they joined

Intake (`intake`) is one Lua script, one round trip: skip a delivery already processed; apply
the notification only when its StateChangeTime is newer than the one stored; schedule or cancel
the reminder; queue the alarm in its channel's outbox; remember the delivery. All or nothing, so
"saved but not queued" cannot happen, and a retried delivery is queued once. Its keys are all
declared: when the alarm's message is in another channel than the caller named, it changes
nothing and the caller runs it again with that channel's outbox keys. A due reminder is queued
and rescheduled by one script too (`remind`).
Every Redis failure surfaces as StoreUnavailableError.

Long: the keys share one hash tag and one layout; the Lua scripts that touch them and their
Python callers belong together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum
from functools import partial
from typing import Any, cast

from pydantic import ValidationError

from core.clock import Clock
from core.errors import StoreUnavailableError
from core.redis import RedisClient, call, redis_key
from integrations.cloudwatch_alarms import AlarmNotification, AlarmState
from integrations.slack.outbox import Outbox, OutboxItem

TAG = redis_key("{alarms}") + ":"
FIRING_KEY = TAG + "firing"
RETENTION_MS = 30 * 24 * 3600 * 1000
DEDUPE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class AlarmSettings:
    reminder: timedelta = timedelta(seconds=1800)
    writes_per_second: float = 1.0
    storm_threshold: int = 5  # more alarms than this changing within storm_window: a digest
    storm_window: timedelta = timedelta(seconds=10)
    digest_hold: timedelta = timedelta(seconds=60)  # a digest stays open this long after a join
    new_thread_after: timedelta = timedelta(seconds=3600)  # OK this long: next ALARM is new


def alarm_key(name: str) -> str:
    return f"{TAG}alarm:{name}"


def delivery_key(message_id: str) -> str:
    return f"{TAG}sns:{message_id}"


class Intake(IntEnum):
    DUPLICATE = 0  # this MessageId was processed already
    STALE = 1  # older than the stored state: nothing queued
    QUEUED = 2  # stored and queued
    ELSEWHERE = 3  # (internal) its message is in another channel: run again with that outbox


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class PagerDutyLink:
    """The PagerDuty incident the alarm's own CloudWatch action opened."""

    incident_id: str
    status: str  # triggered | acknowledged | resolved
    url: str = ""
    by: str = ""


@dataclass(frozen=True)
class AlarmRecord:
    name: str
    alarm: AlarmNotification
    channel: str
    changed_ms: int
    fired_ms: int | None
    root_ts: str | None
    root_kind: str | None  # "alarm" | "digest"
    root_channel: str | None
    shown_state: AlarmState | None
    shown_ms: int | None
    pagerduty: PagerDutyLink | None = None

    @property
    def state(self) -> AlarmState:
        return self.alarm.new_state

    @property
    def pending(self) -> bool:
        return self.shown_ms != self.changed_ms

    @property
    def fired_unseen(self) -> bool:
        """It went to ALARM after the last state shown (perhaps OK again by now)."""
        return self.fired_ms is not None and (
            self.shown_ms is None or self.fired_ms > self.shown_ms
        )

    def root_current(self, new_thread_after: timedelta) -> bool:
        """Its message still tracks it: not OK (as shown) for longer than new_thread_after."""
        if not self.root_ts:
            return False
        if self.shown_state is not AlarmState.OK or self.shown_ms is None:
            return True
        return self.changed_ms - self.shown_ms < new_thread_after.total_seconds() * 1000


# KEYS: delivery, alarm, firing, outbox channels, queue(target), queued(target)
# ARGV: state, changed_ms, payload, channel, name, retention_ms, dedupe_s, reminder_due_ms,
#       outbox item, target (the channel whose outbox KEYS[5..6] are)
# Returns {code, target channel}: see Intake. Every key shares the `{alarms}` hash tag, and
# every key is declared: when the alarm's message lives in another channel than `target` the
# script changes nothing and answers {3, that channel}; the caller runs it again with it.
_INTAKE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, ''} end
local target = redis.call('HGET', KEYS[2], 'root_channel')
if not target or target == '' then target = ARGV[4] end
if target ~= ARGV[10] then return {3, target} end
local cur = tonumber(redis.call('HGET', KEYS[2], 'changed_ms') or '-1')
if tonumber(ARGV[2]) <= cur then
  redis.call('SET', KEYS[1], '1', 'EX', ARGV[7])
  return {1, ''}
end
local prev = redis.call('HGET', KEYS[2], 'state')
redis.call('HSET', KEYS[2], 'name', ARGV[5], 'state', ARGV[1], 'changed_ms', ARGV[2],
  'payload', ARGV[3], 'channel', ARGV[4])
if ARGV[1] == 'ALARM' and prev ~= 'ALARM' then redis.call('HSET', KEYS[2], 'fired_ms', ARGV[2]) end
redis.call('PEXPIRE', KEYS[2], ARGV[6])
if ARGV[1] == 'ALARM' then
  redis.call('ZADD', KEYS[3], 'NX', ARGV[8], ARGV[5])
else
  redis.call('ZREM', KEYS[3], ARGV[5])
end
if redis.call('SADD', KEYS[6], ARGV[9]) == 1 then redis.call('RPUSH', KEYS[5], ARGV[9]) end
redis.call('SADD', KEYS[4], target)
redis.call('SET', KEYS[1], '1', 'EX', ARGV[7])
return {2, target}
"""

# KEYS: delivery, outbox channels, queue, queued; ARGV: item, channel, dedupe_s
_NOTICE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('SADD', KEYS[4], ARGV[1]) == 1 then redis.call('RPUSH', KEYS[3], ARGV[1]) end
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SET', KEYS[1], '1', 'EX', ARGV[3])
return 1
"""


# KEYS: alarm; ARGV: ts
_CLEAR_ROOT = """
if redis.call('HGET', KEYS[1], 'root_ts') ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'root_ts', 'root_kind', 'root_channel', 'shown_state', 'shown_ms')
return 1
"""

# KEYS: alarm, firing, outbox channels, queue, queued; ARGV: name, next_due_ms, item, channel.
# A due reminder: the next one scheduled and this one queued together, or, when the alarm is
# no longer in ALARM, the schedule cleared. Answers 1 when queued.
_REMIND = """
if redis.call('HGET', KEYS[1], 'state') ~= 'ALARM' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
if redis.call('SADD', KEYS[5], ARGV[3]) == 1 then redis.call('RPUSH', KEYS[4], ARGV[3]) end
redis.call('SADD', KEYS[3], ARGV[4])
return 1
"""

# KEYS: the channel's open-digest pointer; ARGV: ts. Closed only if it is still that digest.
_CLOSE_DIGEST = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _int(value: str | None) -> int | None:
    return int(value) if value else None


class AlarmStore:
    def __init__(self, redis: RedisClient, clock: Clock) -> None:
        self._redis = redis
        self._clock = clock
        self._intake = redis.register_script(_INTAKE)
        self._notice = redis.register_script(_NOTICE)
        self._clear_root = redis.register_script(_CLEAR_ROOT)
        self._remind = redis.register_script(_REMIND)
        self._close_digest = redis.register_script(_CLOSE_DIGEST)

    def now_ms(self) -> int:
        return _ms(self._clock.now())

    # -- deliveries --------------------------------------------------------------------------
    async def first_delivery(self, message_id: str) -> bool:
        key = delivery_key(message_id)
        done = await call(lambda: self._redis.set(key, "1", nx=True, ex=DEDUPE_SECONDS))
        return bool(done)

    async def forget_delivery(self, message_id: str) -> None:
        await call(lambda: self._redis.delete(delivery_key(message_id)))

    async def intake(
        self,
        alarm: AlarmNotification,
        *,
        channel: str,
        message_id: str,
        reminder_due: datetime,
        item: OutboxItem,
        outbox: Outbox,
    ) -> tuple[Intake, str]:
        """Apply one delivery in one round trip (see the module's doc; two when the alarm's
        message lives in another channel than ``channel`` — after a config change). Returns
        what happened and, when queued, the channel whose outbox got the item."""
        target = channel
        for _ in range(3):
            queue, queued, _ = outbox.queue_keys(target)
            keys = [
                delivery_key(message_id),
                alarm_key(alarm.name),
                FIRING_KEY,
                outbox.channels_key,
                queue,
                queued,
            ]
            args = [
                alarm.new_state.value,
                _ms(alarm.changed_at),
                alarm.model_dump_json(),
                channel,
                alarm.name,
                RETENTION_MS,
                DEDUPE_SECONDS,
                _ms(reminder_due),
                item.encode(),
                target,
            ]
            code, found = await call(partial(self._intake, keys=keys, args=args))
            if int(code) != Intake.ELSEWHERE:
                return Intake(int(code)), str(found)
            target = str(found)
        raise StoreUnavailableError("the alarm's message keeps moving between channels")

    async def notice(
        self, *, channel: str, message_id: str, item: OutboxItem, outbox: Outbox
    ) -> bool:
        """Queue a plain notification once per delivery (one round trip); False: a duplicate."""
        queue, queued, _ = outbox.queue_keys(channel)
        keys = [delivery_key(message_id), outbox.channels_key, queue, queued]
        args: list[str | int] = [item.encode(), channel, DEDUPE_SECONDS]
        done = await call(lambda: self._notice(keys=keys, args=args))
        return bool(done)

    async def get(self, name: str) -> AlarmRecord | None:
        raw = cast("dict[str, str]", await call(lambda: self._redis.hgetall(alarm_key(name))))
        if not raw.get("payload"):
            return None
        try:
            alarm = AlarmNotification.model_validate_json(raw["payload"])
        except ValidationError:
            return None
        shown = raw.get("shown_state")
        return AlarmRecord(
            name=name,
            alarm=alarm,
            channel=raw.get("channel", ""),
            changed_ms=int(raw["changed_ms"]),
            fired_ms=_int(raw.get("fired_ms")),
            root_ts=raw.get("root_ts") or None,
            root_kind=raw.get("root_kind") or None,
            root_channel=raw.get("root_channel") or None,
            shown_state=AlarmState(shown) if shown else None,
            shown_ms=_int(raw.get("shown_ms")),
            pagerduty=PagerDutyLink(
                incident_id=raw["pd_id"],
                status=raw.get("pd_status", ""),
                url=raw.get("pd_url", ""),
                by=raw.get("pd_by", ""),
            )
            if raw.get("pd_id")
            else None,
        )

    async def link_pagerduty(self, name: str, link: PagerDutyLink) -> bool:
        """Remember the alarm's PagerDuty incident; False when the alarm is unknown."""

        async def write() -> bool:
            if not await self._redis.hexists(alarm_key(name), "payload"):
                return False
            fields = {
                "pd_id": link.incident_id,
                "pd_status": link.status,
                "pd_url": link.url,
                "pd_by": link.by,
            }
            await self._redis.hset(alarm_key(name), mapping=cast(Any, fields))
            return True

        linked: bool = await call(write)
        return linked

    async def mark_shown(self, record: AlarmRecord) -> None:
        fields: dict[Any, Any] = {
            "shown_state": record.state.value,
            "shown_ms": str(record.changed_ms),
        }
        await call(lambda: self._redis.hset(alarm_key(record.name), mapping=fields))

    async def set_root(self, record: AlarmRecord, channel: str, ts: str, kind: str) -> None:
        fields: dict[Any, Any] = {"root_ts": ts, "root_kind": kind, "root_channel": channel}
        await call(lambda: self._redis.hset(alarm_key(record.name), mapping=fields))

    async def clear_root(self, name: str, ts: str) -> bool:
        """The message at ``ts`` that showed the alarm is gone (deleted in Slack): forget it,
        and what it showed, so the alarm's next write posts a new one. Only if it is still
        the alarm's message (compare and delete); False otherwise."""
        cleared = await call(lambda: self._clear_root(keys=[alarm_key(name)], args=[ts]))
        return bool(cleared)

    # -- reminders ---------------------------------------------------------------------------
    async def remind(
        self, name: str, *, next_due: datetime, channel: str, item: OutboxItem, outbox: Outbox
    ) -> bool:
        """Queue a due reminder and schedule the next, in one step (see _REMIND)."""
        queue, queued, _ = outbox.queue_keys(channel)
        keys = [alarm_key(name), FIRING_KEY, outbox.channels_key, queue, queued]
        args: list[str | int] = [name, _ms(next_due), item.encode(), channel]
        return bool(await call(lambda: self._remind(keys=keys, args=args)))

    async def schedule_reminder(self, name: str, due: datetime, *, replace: bool) -> None:
        mapping = {name: _ms(due)}
        if replace:
            await call(lambda: self._redis.zadd(FIRING_KEY, mapping))
        else:
            await call(lambda: self._redis.zadd(FIRING_KEY, mapping, nx=True))

    async def cancel_reminder(self, name: str) -> None:
        await call(lambda: self._redis.zrem(FIRING_KEY, name))

    async def reminders_due(self, limit: int = 100) -> list[str]:
        now = self.now_ms()
        return cast(
            "list[str]",
            await call(
                lambda: self._redis.zrangebyscore(FIRING_KEY, "-inf", now, start=0, num=limit)
            ),
        )

    # -- storms and digests ------------------------------------------------------------------
    async def note_root(self, channel: str, name: str, window: timedelta) -> None:
        key = redis_key("alarmch", channel, "recent")
        now = self.now_ms()

        async def write() -> None:
            pipe = self._redis.pipeline(transaction=False)
            pipe.zadd(key, {name: now})
            pipe.zremrangebyscore(key, "-inf", now - int(window.total_seconds() * 1000))
            pipe.pexpire(key, int(window.total_seconds() * 1000) + 1000)
            await pipe.execute()

        await call(write)

    async def recent_roots(self, channel: str, window: timedelta) -> int:
        key = redis_key("alarmch", channel, "recent")
        since = self.now_ms() - int(window.total_seconds() * 1000)
        count: int = await call(lambda: self._redis.zcount(key, since, "+inf"))
        return count

    async def close_digest(self, channel: str, ts: str) -> None:
        key = redis_key("alarmch", channel, "digest")
        await call(lambda: self._close_digest(keys=[key], args=[ts]))

    async def open_digest(self, channel: str) -> str | None:
        return cast(
            "str | None",
            await call(lambda: self._redis.get(redis_key("alarmch", channel, "digest"))),
        )

    async def hold_digest(self, channel: str, ts: str, hold: timedelta) -> None:
        key = redis_key("alarmch", channel, "digest")
        px = int(hold.total_seconds() * 1000)
        await call(lambda: self._redis.set(key, ts, px=px))

    async def join_digest(self, channel: str, ts: str, name: str) -> None:
        key = redis_key(f"{{alarmdigest:{channel}:{ts}}}")

        async def write() -> None:
            await self._redis.zadd(key, {name: self.now_ms()}, nx=True)
            await self._redis.pexpire(key, RETENTION_MS)

        await call(write)

    async def digest_members(self, channel: str, ts: str) -> list[str]:
        key = redis_key(f"{{alarmdigest:{channel}:{ts}}}")
        return cast("list[str]", await call(lambda: self._redis.zrange(key, 0, -1)))
