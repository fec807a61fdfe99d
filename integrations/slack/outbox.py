"""A per-channel outbox in Redis, drained by one replica at a time, about one write per second.

Keys (namespace `dhanam:{alarms}:outbox`, one hash slot so the scripts run on a cluster too):
  <ns>:<channel>              list: pending items, oldest first
  <ns>:<channel>:queued       set: the items in that list. An item queued again while pending
                              keeps its place: writes for one subject coalesce, and the processor
                              renders its state *now*.
  <ns>:<channel>:processing   list: the item being written (moved there by LMOVE; removed only
                              after Slack accepted the write or refused it for good)
  <ns>:<channel>:last         when the last write to the channel finished (ms), across replicas
  <ns>:<channel>:lease        the drain lease: a random token, kept alive while its owner drains
  <ns>:channels               set: channels that have had items (the recovery sweep looks here)

The drainer takes one item at a time and hands it to the processor with a `PacedSlack`, which
waits for the channel's next slot before each post or edit (writes are spaced from the end of the
previous one, so a sliding one-second window never holds two at the default rate). A 429 that
slack_sdk's retry handler gives up on puts the item back and sleeps Retry-After; a 5xx or a Redis
failure puts it back with a backoff. A new lease owner first puts back what a dead owner left in
`processing`, so a crash between taking an item and writing it loses nothing (the write may
happen twice, never zero times). Refusals no retry fixes (`PERMANENT_REFUSALS`) are logged with
the item and dropped; `not_in_channel` first tries `conversations.join` once.

Fencing: the lease lives in the namespace, so every script that moves an item checks it in the
same step. An owner that stalled past its lease (a long GC pause, a frozen VM, a partition) and
then wakes up cannot take another item: `TAKE` answers "fenced" unless the caller still holds
the lease, and the stalled owner stops. Settling the item it was writing (`DONE`, `PUT_BACK`) is
allowed only while it holds the lease or nobody does, so it never removes an item a new owner
has reclaimed; at worst the new owner writes it again (twice, never zero times).

Each item kind has its handler (`register`): the alarm service handles alarm kinds, the
PagerDuty sync its Slack updates. A kind with no handler is logged and dropped.

Long: the fencing lives in the Lua scripts and in the drain loop that calls them, one rule in
two languages; split, the lease rules would have to be read in two files.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any, Protocol, cast

import aiohttp
import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from core.errors import StoreUnavailableError
from core.redis import RedisClient, call, redis_key

log = structlog.get_logger(__name__)

NAMESPACE = redis_key("{alarms}", "outbox")
LEASE_TTL = timedelta(seconds=20)
MAX_BACKOFF_SECONDS = 8
# Errors Slack answers with HTTP 200 that a later try fixes (kept, like a 429 or 5xx).
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
MAX_ATTEMPTS = 8  # an error neither known permanent nor transient: tries before dropping
STOP_GRACE_SECONDS = 5.0
PERMANENT_REFUSALS = frozenset(
    {"invalid_blocks", "channel_not_found", "is_archived", "not_in_channel"}
)


class ItemKind(StrEnum):
    ALARM = "alarm"  # ref: alarm name — render its newest state
    DIGEST = "digest"  # ref: the digest message's ts
    REMINDER = "reminder"  # ref: alarm name
    LINK = "link"  # ref: alarm name — its PagerDuty link changed
    NOTICE = "notice"  # ref: SNS MessageId; data: {"subject", "body"}
    PAGERDUTY = "pagerduty"  # ref: webhook event id; data: {"event": the event as JSON}


@dataclass(frozen=True)
class OutboxItem:
    """One queued write. Serialised only here (`encode`/`decode`): equal items encode equally,
    which is what makes a re-queued item coalesce with the pending one."""

    kind: ItemKind
    ref: str
    data: tuple[tuple[str, str], ...] = ()

    def encode(self) -> str:
        body: dict[str, Any] = {"k": self.kind.value, "r": self.ref}
        if self.data:
            body["d"] = dict(self.data)
        return json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False)

    @classmethod
    def decode(cls, raw: str) -> OutboxItem | None:
        try:
            body = json.loads(raw)
            extra = body.get("d") or {}
            return cls(
                ItemKind(body["k"]),
                str(body["r"]),
                tuple((str(k), str(v)) for k, v in sorted(extra.items())),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

    def get(self, field: str) -> str:
        return dict(self.data).get(field, "")


class Leases(Protocol):
    async def acquire(self, name: str, token: str, ttl: timedelta) -> bool: ...

    async def renew(self, name: str, token: str, ttl: timedelta) -> bool: ...

    async def release(self, name: str, token: str) -> bool: ...


class RetryLaterError(Exception):
    """Slack asked us to wait (429 after the client's own retries)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds}s")
        self.seconds = seconds


class PacedSlack:
    """Slack writes to one channel, each waiting for the channel's next slot."""

    def __init__(
        self, client: AsyncWebClient, interval: float, last_end: float, record: Callable[[], Any]
    ) -> None:
        self._client = client
        self._interval = interval
        self._last_end = last_end  # wall-clock seconds
        self._record = record
        self.writes = 0

    async def _slot(self) -> None:
        wait = self._last_end + self._interval - time.time()
        if wait > 0:
            await asyncio.sleep(wait)

    async def _write(self, method: str, **kwargs: Any) -> dict[str, Any]:
        await self._slot()
        call = (
            self._client.chat_update if method == "chat.update" else self._client.chat_postMessage
        )
        try:
            response = await call(**kwargs)
        except SlackApiError as exc:
            if exc.response is not None and exc.response.status_code == 429:
                retry = float(exc.response.headers.get("Retry-After", "1") or 1)
                raise RetryLaterError(retry) from exc
            raise
        finally:
            self._last_end = time.time()
            self.writes += 1
            await self._record()
        return dict(response.data) if isinstance(response.data, dict) else {}

    async def post(
        self, channel: str, text: str, blocks: list[dict[str, Any]] | None = None, **extra: Any
    ) -> str:
        kwargs: dict[str, Any] = {"channel": channel, "text": text, "unfurl_links": False}
        if blocks is not None:
            kwargs["blocks"] = blocks
        kwargs.update(extra)
        data = await self._write("chat.postMessage", **kwargs)
        return str(data.get("ts", ""))

    async def update(
        self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        kwargs: dict[str, Any] = {"channel": channel, "ts": ts, "text": text}
        kwargs["blocks"] = blocks if blocks is not None else []
        await self._write("chat.update", **kwargs)


Handler = Callable[[str, OutboxItem, PacedSlack], Awaitable[None]]


def _slack_failure(exc: SlackApiError) -> tuple[int, str]:
    """HTTP status and Slack's `error` of a failed call (tolerant of a bare dict response)."""
    response: Any = exc.response
    status = getattr(response, "status_code", 0) or 0
    try:
        error = str(response.get("error") or "unknown") if response is not None else "unknown"
    except (AttributeError, TypeError):
        error = "unknown"
    return int(status), error


# Failures of the way to Slack or Redis, not of the item: kept however long they last.
_TRANSIENT = (StoreUnavailableError, OSError, TimeoutError, aiohttp.ClientError)


class LeaseLostError(Exception):
    """The drain lease is someone else's now: this owner stalled past it (fenced)."""


# KEYS: queue, queued, channels; ARGV: item, channel. Queued once while pending.
_ENQUEUE = """
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then redis.call('RPUSH', KEYS[1], ARGV[1]) end
redis.call('SADD', KEYS[3], ARGV[2])
return 1
"""

# Every script that moves items gets KEYS: queue, queued, processing, lease; ARGV[1]: token.
# The owner's scripts answer -1 ("fenced") when the lease is someone else's.

# The head moves to `processing` until Slack took it. Only the lease's holder takes.
_TAKE = """
if redis.call('GET', KEYS[4]) ~= ARGV[1] then return -1 end
local item = redis.call('LMOVE', KEYS[1], KEYS[3], 'LEFT', 'RIGHT')
if item then redis.call('SREM', KEYS[2], item) end
return item
"""

# ARGV[2]: item. Settled (written, or refused for good): off `processing`. By the holder, or
# by the last one when nobody holds the lease; never under a new owner, who may hold it again.
_DONE = """
local holder = redis.call('GET', KEYS[4])
if holder and holder ~= ARGV[1] then return -1 end
return redis.call('LREM', KEYS[3], 1, ARGV[2])
"""

# ARGV[2]: item. Back at the front unless queued again meanwhile (the same rule as _DONE).
_PUT_BACK = """
local holder = redis.call('GET', KEYS[4])
if holder and holder ~= ARGV[1] then return -1 end
redis.call('LREM', KEYS[3], 1, ARGV[2])
if redis.call('SADD', KEYS[2], ARGV[2]) == 1 then redis.call('LPUSH', KEYS[1], ARGV[2]) end
return 1
"""

# A new owner puts back what the previous one held.
_RECLAIM = """
if redis.call('GET', KEYS[4]) ~= ARGV[1] then return -1 end
local held = redis.call('LRANGE', KEYS[3], 0, -1)
for i = #held, 1, -1 do
  if redis.call('SADD', KEYS[2], held[i]) == 1 then redis.call('LPUSH', KEYS[1], held[i]) end
end
redis.call('DEL', KEYS[3])
return #held
"""

# KEYS: lease; ARGV: token, ttl_ms
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Outbox:
    def __init__(
        self,
        *,
        redis: RedisClient,
        client: AsyncWebClient,
        writes_per_second: float = 1.0,
        namespace: str = NAMESPACE,
    ) -> None:
        self._redis = redis
        self._client = client
        self._interval = 1.0 / writes_per_second
        self._ns = namespace
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._dirty: set[str] = set()
        self._attempts: dict[tuple[str, str], int] = {}  # tries so far: the backoff
        self._failures: dict[tuple[str, str], int] = {}  # non-transient failures: the drop
        self._stopping = False
        self._enqueue = redis.register_script(_ENQUEUE)
        self._take = redis.register_script(_TAKE)
        self._put_back = redis.register_script(_PUT_BACK)
        self._reclaim = redis.register_script(_RECLAIM)
        self._settle = redis.register_script(_DONE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self.handlers: dict[ItemKind, Handler] = {}

    def register(self, handler: Handler, *kinds: ItemKind) -> None:
        """``handler`` writes items of ``kinds`` (one handler per kind)."""
        for kind in kinds:
            if kind in self.handlers:
                raise ValueError(f"outbox kind {kind.value!r} already has a handler")
            self.handlers[kind] = handler

    # -- keys (all in the namespace's hash slot) -----------------------------------------------
    def key(self, channel: str) -> str:
        return f"{self._ns}:{channel}"

    def queue_keys(self, channel: str) -> list[str]:
        """queue, queued set, processing list."""
        base = self.key(channel)
        return [base, base + ":queued", base + ":processing"]

    def lease_key(self, channel: str) -> str:
        return self.key(channel) + ":lease"

    def _owned_keys(self, channel: str) -> list[str]:
        return [*self.queue_keys(channel), self.lease_key(channel)]

    @property
    def namespace(self) -> str:
        return self._ns

    @property
    def channels_key(self) -> str:
        return f"{self._ns}:channels"

    # -- queueing ------------------------------------------------------------------------------
    async def enqueue(self, channel: str, item: OutboxItem) -> None:
        """Queue ``item`` (kept in place if already pending) and make sure someone drains."""
        queue, queued, _ = self.queue_keys(channel)
        keys = [queue, queued, self.channels_key]
        await call(lambda: self._enqueue(keys=keys, args=[item.encode(), channel]))
        self.kick(channel)

    async def pending(self, channel: str) -> list[OutboxItem]:
        raw = cast("list[str]", await call(lambda: self._redis.lrange(self.key(channel), 0, -1)))
        return [item for r in raw if (item := OutboxItem.decode(r)) is not None]

    def kick(self, channel: str) -> None:
        if self._stopping:
            return
        self._dirty.add(channel)
        task = self._tasks.get(channel)
        if task is None or task.done():
            self._tasks[channel] = asyncio.create_task(self._drain(channel))

    async def idle(self, limit: float = 60.0) -> None:
        """Wait (up to ``limit`` s) until this replica has no drain running."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline:
            running = [t for t in self._tasks.values() if not t.done()]
            if not running:
                return
            await asyncio.wait(running, timeout=max(deadline - loop.time(), 0.01))

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Let each drain finish the item it is writing (up to ``grace`` s), take no new one,
        then cancel: a cancelled item stays in `processing` for the next owner."""
        self._stopping = True
        tasks = [t for t in self._tasks.values() if not t.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def recover(self) -> None:
        """Kick every channel with pending or held items (a drainer that died left them)."""
        channels = cast("set[str]", await call(lambda: self._redis.smembers(self.channels_key)))
        for channel in channels:
            if await self._count(channel):
                self.kick(channel)

    async def _count(self, channel: str) -> int:
        queue, _, processing = self.queue_keys(channel)

        async def count() -> int:
            pipe = self._redis.pipeline(transaction=False)
            pipe.llen(queue)
            pipe.llen(processing)
            queued, held = await pipe.execute()
            return int(queued) + int(held)

        total: int = await call(count)
        return total

    # -- draining ----------------------------------------------------------------------------
    # -- the drain lease (in the namespace, so the item scripts can check it) -----------------
    async def _acquire(self, channel: str, token: str) -> bool:
        ttl = int(LEASE_TTL.total_seconds() * 1000)
        key = self.lease_key(channel)
        done = await call(lambda: self._redis.set(key, token, nx=True, px=ttl))
        return bool(done)

    async def _renew_lease(self, channel: str, token: str) -> bool:
        args: list[str | int] = [token, int(LEASE_TTL.total_seconds() * 1000)]
        keys = [self.lease_key(channel)]
        return bool(await call(lambda: self._renew(keys=keys, args=args)))

    async def _release_lease(self, channel: str, token: str) -> None:
        keys = [self.lease_key(channel)]
        await call(lambda: self._release(keys=keys, args=[token]))

    async def _script(self, script: Any, channel: str, token: str, *args: str) -> Any:
        """Run an item script under the lease; LeaseLostError when it answers "fenced"."""
        keys = self._owned_keys(channel)
        result = await call(lambda: script(keys=keys, args=[token, *args]))
        if result == -1:
            raise LeaseLostError(channel)
        return result

    async def _drain(self, channel: str) -> None:
        try:
            while not self._stopping:
                self._dirty.discard(channel)
                token = secrets.token_hex(8)
                if not await self._acquire(channel, token):
                    return  # another replica drains; it looks again after releasing
                try:
                    await self._drain_held(channel, token)
                finally:
                    with contextlib.suppress(StoreUnavailableError):
                        await self._release_lease(channel, token)
                left = await self._count(channel)
                if not left and channel not in self._dirty:
                    return
        except LeaseLostError:
            # This owner stalled past its lease and someone else drains now: stop, quietly.
            log.warning("outbox.fenced", channel=channel)
        except StoreUnavailableError as exc:
            log.warning("outbox.store_unavailable", channel=channel, error=str(exc))
        except Exception:
            log.exception("outbox.drain_failed", channel=channel)

    async def _drain_held(self, channel: str, token: str) -> None:
        held = await self._script(self._reclaim, channel, token)
        if held:
            log.warning("outbox.reclaimed", channel=channel, items=held)
        last_key = self.key(channel) + ":last"
        raw = await call(lambda: self._redis.get(last_key))
        last_end = float(raw) / 1000 if raw else 0.0

        async def record() -> None:
            with contextlib.suppress(StoreUnavailableError):
                await call(lambda: self._redis.set(last_key, int(time.time() * 1000), ex=60))

        slack = PacedSlack(self._client, self._interval, last_end, record)
        joined = False
        while not self._stopping:
            raw_item: str | None = await self._script(self._take, channel, token)
            if raw_item is None:
                return
            # A write may outlast the lease (Slack timeouts, Retry-After waits, two calls for
            # an alarm): keep the lease alive meanwhile, so no second owner reclaims the item.
            keeper = asyncio.create_task(self._keep_lease(channel, token))
            try:
                joined = await self._write(channel, token, raw_item, slack, joined) or joined
            finally:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
            if not await self._renew_lease(channel, token):
                log.warning("outbox.lease_lost", channel=channel)
                return

    async def _keep_lease(self, channel: str, token: str) -> None:
        while True:
            await asyncio.sleep(LEASE_TTL.total_seconds() / 3)
            try:
                if not await self._renew_lease(channel, token):
                    log.warning("outbox.lease_lost_during_write", channel=channel)
                    return
            except StoreUnavailableError:
                log.warning("outbox.lease_not_renewed", channel=channel)

    async def _write(
        self, channel: str, token: str, raw: str, slack: PacedSlack, joined: bool
    ) -> bool:
        """Hand one taken item to its handler and settle it: done, put back, or dropped.
        True when it joined the channel (`not_in_channel` is tried once per drain)."""
        item = OutboxItem.decode(raw)
        handler = self.handlers.get(item.kind) if item is not None else None
        if item is None or handler is None:
            why = "outbox.item_unreadable" if item is None else "outbox.no_handler"
            log.error(why, channel=channel, item=raw)
            await self._done(channel, token, raw)
            return False
        try:
            await handler(channel, item, slack)
        except RetryLaterError as exc:
            log.warning("outbox.rate_limited", channel=channel, retry_after=exc.seconds)
            await self._requeue(channel, token, raw)
            await asyncio.sleep(exc.seconds)
        except SlackApiError as exc:
            status, error = _slack_failure(exc)
            if status == 429 or status >= 500 or error in TRANSIENT_ERRORS:
                # Slack is overloaded or down: keep the item, however long it takes.
                log.warning("outbox.slack_unavailable", channel=channel, status=status, error=error)
                await self._requeue(channel, token, raw)
                await asyncio.sleep(self._backoff(channel, raw))
            elif error == "not_in_channel" and not joined and await self._join(channel):
                await self._requeue(channel, token, raw)  # once more, now as a member
                return True
            elif error in PERMANENT_REFUSALS:
                # A refusal that a retry cannot fix: dropped deliberately, with the item.
                await self._drop(channel, token, raw, item, error)
            else:
                await self._retry_or_drop(channel, token, raw, item, error, refused=True)
        except Exception as exc:  # one bad item must never block its channel
            if isinstance(exc, _TRANSIENT):
                # Redis or the network (a dropped connection, a timeout): keep the item.
                log.warning("outbox.write_failed", channel=channel, item=raw, error=str(exc))
                await self._requeue(channel, token, raw)
                await asyncio.sleep(self._backoff(channel, raw))
            else:
                log.exception("outbox.item_failed", channel=channel, kind=item.kind.value)
                await self._retry_or_drop(
                    channel, token, raw, item, type(exc).__name__, refused=False
                )
        else:
            self._forget(channel, raw)
            await self._done(channel, token, raw)
        return False

    def _forget(self, channel: str, raw: str) -> None:
        self._attempts.pop((channel, raw), None)
        self._failures.pop((channel, raw), None)

    async def _drop(
        self,
        channel: str,
        token: str,
        raw: str,
        item: OutboxItem,
        error: str,
        *,
        refused: bool = True,
    ) -> None:
        """Dropped deliberately, logged with the item: Slack refused it for good, or (not
        ``refused``) handling it failed MAX_ATTEMPTS times for a reason no retry fixed."""
        failures = self._failures.get((channel, raw), 0)
        self._forget(channel, raw)
        log.error(
            "outbox.write_refused" if refused else "outbox.item_dropped",
            channel=channel,
            kind=item.kind.value,
            ref=item.ref,
            error=error,
            permanent=error in PERMANENT_REFUSALS,
            failures=failures,
        )
        await self._done(channel, token, raw)

    async def _retry_or_drop(
        self, channel: str, token: str, raw: str, item: OutboxItem, error: str, *, refused: bool
    ) -> None:
        """An error not known to be permanent nor transient (message_not_found, an auth
        error, a bug rendering the item): retried with backoff a bounded number of times,
        then dropped with an error log — never forever, and never blocking the channel. Only
        these failures count toward MAX_ATTEMPTS: a long Slack outage before does not."""
        failures = self._failures.get((channel, raw), 0) + 1
        self._failures[(channel, raw)] = failures
        if failures >= MAX_ATTEMPTS:
            await self._drop(channel, token, raw, item, error, refused=refused)
            return
        log.warning("outbox.write_retrying", channel=channel, kind=item.kind.value, error=error)
        await self._requeue(channel, token, raw)
        await asyncio.sleep(self._backoff(channel, raw))

    async def _join(self, channel: str) -> bool:
        """`conversations.join` (public channels only; Slack refuses it for private ones)."""
        try:
            await self._client.conversations_join(channel=channel)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else "unknown"
            log.warning("outbox.join_failed", channel=channel, error=error)
            return False
        except (OSError, TimeoutError) as exc:
            log.warning("outbox.join_failed", channel=channel, error=str(exc))
            return False
        log.info("outbox.joined", channel=channel)
        return True

    async def _done(self, channel: str, token: str, raw: str) -> None:
        await self._script(self._settle, channel, token, raw)

    async def _requeue(self, channel: str, token: str, raw: str) -> None:
        """Put the item back at the front: transient failures never drop a write (the item
        names its subject; what is sent is always its newest state)."""
        self._attempts[(channel, raw)] = self._attempts.get((channel, raw), 0) + 1
        await self._script(self._put_back, channel, token, raw)

    def _backoff(self, channel: str, raw: str) -> float:
        attempts = self._attempts.get((channel, raw), 1)
        return float(min(2 ** (attempts - 1), MAX_BACKOFF_SECONDS))
