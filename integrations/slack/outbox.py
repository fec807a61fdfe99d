"""A per-channel outbox in Redis, drained by one replica at a time, about one write per second.

Keys (prefix `dhanam:`):
  outbox:<channel>     sorted set: pending items ("alarm:<name>", "digest:<ts>", …) -> when
                       first queued. An item queued again while pending keeps its place: writes
                       for one subject coalesce, and the processor renders its state *now*.
  outbox:channels      set: channels that have had items (the recovery sweep looks here)
  outbox:<channel>:last  when the last write to the channel finished (ms), across replicas
  lease:outbox:<channel> the drain lease (approvals.store's lease helpers)

The drainer takes one item at a time and hands it to the processor with a `PacedSlack`, which
waits for the channel's next slot before each post or edit (writes are spaced from the end of the
previous one, so a sliding one-second window never holds two at the default rate). A 429 that
slack_sdk's retry handler gives up on puts the item back and sleeps Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Protocol

import structlog
from redis.exceptions import RedisError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from core.errors import StoreUnavailableError
from integrations.redis_client import RedisClient

log = structlog.get_logger(__name__)

PREFIX = "dhanam:"
CHANNELS_KEY = PREFIX + "outbox:channels"
LEASE_TTL = timedelta(seconds=20)
MAX_BACKOFF_SECONDS = 8


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


class Processor(Protocol):
    async def process(self, channel: str, item: str, slack: PacedSlack) -> None: ...


class Outbox:
    def __init__(
        self,
        *,
        redis: RedisClient,
        client: AsyncWebClient,
        leases: Leases,
        writes_per_second: float = 1.0,
    ) -> None:
        self._redis = redis
        self._client = client
        self._leases = leases
        self._interval = 1.0 / writes_per_second
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._dirty: set[str] = set()
        self._attempts: dict[tuple[str, str], int] = {}
        self.processor: Processor | None = None

    async def _call(self, op: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await op()
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailableError(f"{type(exc).__name__}: {exc}") from exc

    @staticmethod
    def key(channel: str) -> str:
        return f"{PREFIX}outbox:{channel}"

    async def enqueue(self, channel: str, item: str) -> None:
        """Queue ``item`` (kept in place if already pending) and make sure someone drains."""

        async def write() -> None:
            await self._redis.zadd(self.key(channel), {item: time.time()}, nx=True)
            await self._redis.sadd(CHANNELS_KEY, channel)

        await self._call(write)
        self.kick(channel)

    async def pending(self, channel: str) -> list[str]:
        items: list[str] = await self._call(lambda: self._redis.zrange(self.key(channel), 0, -1))
        return items

    def kick(self, channel: str) -> None:
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

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def recover(self) -> None:
        """Kick every channel with pending items (a drainer that died left them)."""
        channels: set[str] = await self._call(lambda: self._redis.smembers(CHANNELS_KEY))
        for channel in channels:
            if await self._count(channel):
                self.kick(channel)

    async def _remove(self, channel: str, item: str) -> None:
        await self._call(lambda: self._redis.zrem(self.key(channel), item))

    async def _count(self, channel: str) -> int:
        count: int = await self._call(lambda: self._redis.zcard(self.key(channel)))
        return count

    # -- draining ----------------------------------------------------------------------------
    async def _drain(self, channel: str) -> None:
        name = f"outbox:{channel}"
        try:
            while True:
                self._dirty.discard(channel)
                token = secrets.token_hex(8)
                if not await self._leases.acquire(name, token, LEASE_TTL):
                    return  # another replica drains; it looks again after releasing
                try:
                    await self._drain_held(channel, name, token)
                finally:
                    with contextlib.suppress(StoreUnavailableError):
                        await self._leases.release(name, token)
                left = await self._count(channel)
                if not left and channel not in self._dirty:
                    return
        except StoreUnavailableError as exc:
            log.warning("outbox.store_unavailable", channel=channel, error=str(exc))
        except Exception:
            log.exception("outbox.drain_failed", channel=channel)

    async def _drain_held(self, channel: str, name: str, token: str) -> None:
        assert self.processor is not None, "Outbox.processor is not set"
        last_key = self.key(channel) + ":last"
        raw = await self._call(lambda: self._redis.get(last_key))
        last_end = float(raw) / 1000 if raw else 0.0

        async def record() -> None:
            with contextlib.suppress(StoreUnavailableError):
                await self._call(lambda: self._redis.set(last_key, int(time.time() * 1000), ex=60))

        slack = PacedSlack(self._client, self._interval, last_end, record)
        while True:
            head: list[tuple[str, float]] = await self._call(
                lambda: self._redis.zrange(self.key(channel), 0, 0, withscores=True)
            )
            if not head:
                return
            item, score = head[0]
            await self._remove(channel, item)
            try:
                await self.processor.process(channel, item, slack)
                self._attempts.pop((channel, item), None)
            except RetryLaterError as exc:
                log.warning("outbox.rate_limited", channel=channel, retry_after=exc.seconds)
                await self._requeue(channel, item, score)
                await asyncio.sleep(exc.seconds)
            except SlackApiError as exc:
                status = exc.response.status_code if exc.response is not None else 0
                error = exc.response.get("error") if exc.response is not None else "unknown"
                if status == 429 or status >= 500:
                    # Slack is overloaded or down: keep the item, however long it takes.
                    log.warning("outbox.slack_unavailable", channel=channel, status=status)
                    await self._requeue(channel, item, score)
                    await asyncio.sleep(self._backoff(channel, item))
                else:
                    # A refusal that a retry cannot fix (channel_not_found, invalid_blocks…).
                    self._attempts.pop((channel, item), None)
                    log.exception("outbox.write_refused", channel=channel, item=item, error=error)
            except (StoreUnavailableError, OSError, TimeoutError) as exc:
                log.warning("outbox.write_failed", channel=channel, item=item, error=str(exc))
                await self._requeue(channel, item, score)
                await asyncio.sleep(self._backoff(channel, item))
            if not await self._leases.renew(name, token, LEASE_TTL):
                log.warning("outbox.lease_lost", channel=channel)
                return

    async def _requeue(self, channel: str, item: str, score: float) -> None:
        """Put the item back at its place: transient failures never drop a write (the item is
        the alarm's id; what is sent is always its newest state)."""
        self._attempts[(channel, item)] = self._attempts.get((channel, item), 0) + 1
        await self._call(lambda: self._redis.zadd(self.key(channel), {item: score}, nx=True))

    def _backoff(self, channel: str, item: str) -> float:
        attempts = self._attempts.get((channel, item), 1)
        return float(min(2 ** (attempts - 1), MAX_BACKOFF_SECONDS))
