"""The outbox's drain lease fences a stalled owner (a real redis-server, two Outbox owners).

A process that stalls past its lease (GC pause, frozen VM, partition) renews nothing. When it
wakes up, another owner has reclaimed what it held and drains the channel: the stalled owner must
not take another item, and must not remove from `processing` an item the new owner holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from integrations.redis_client import RedisClient, create_redis
from integrations.slack.outbox import (
    MAX_ATTEMPTS,
    ItemKind,
    LeaseLostError,
    Outbox,
    OutboxItem,
    PacedSlack,
)

CHANNEL = "C0FENCE"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[RedisClient]:
    client = create_redis(redis_url)
    yield client
    await client.aclose()


def _outbox(redis: RedisClient) -> Outbox:
    client = AsyncWebClient(token="xoxb-unused", base_url="http://127.0.0.1:9/")
    return Outbox(redis=redis, client=client, writes_per_second=1000)


def _item(ref: str) -> OutboxItem:
    return OutboxItem(ItemKind.NOTICE, ref, (("body", ref), ("subject", ref)))


async def _until(predicate: object, limit: float = 5.0) -> None:
    assert callable(predicate)
    for _ in range(int(limit / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


async def _frozen(channel: str, token: str) -> None:
    """A stalled process's lease keeper: it renews nothing."""
    await asyncio.Event().wait()


async def test_a_stalled_owner_that_wakes_up_takes_nothing_more(
    redis: RedisClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("integrations.slack.outbox.LEASE_TTL", timedelta(seconds=0.4))
    stalled_owner, new_owner = _outbox(redis), _outbox(redis)
    written: list[tuple[str, str]] = []
    wake_up, stalled = asyncio.Event(), asyncio.Event()
    release_new, new_holds = asyncio.Event(), asyncio.Event()

    async def stalls(channel: str, item: OutboxItem, slack: PacedSlack) -> None:
        written.append(("stalled", item.ref))
        if item.ref == "first":
            stalled.set()
            await wake_up.wait()

    async def drains(channel: str, item: OutboxItem, slack: PacedSlack) -> None:
        written.append(("new", item.ref))
        if item.ref == "first":
            new_holds.set()
            await release_new.wait()

    stalled_owner.register(stalls, ItemKind.NOTICE)
    new_owner.register(drains, ItemKind.NOTICE)
    monkeypatch.setattr(stalled_owner, "_keep_lease", _frozen)

    await stalled_owner.enqueue(CHANNEL, _item("first"))
    await asyncio.wait_for(stalled.wait(), 5)
    for ref in ("second", "third", "fourth"):
        await new_owner.enqueue(CHANNEL, _item(ref))  # its drain finds the lease taken
    await asyncio.sleep(0.6)  # the stalled owner's lease lapses
    new_owner.kick(CHANNEL)  # what the recovery sweep does
    await asyncio.wait_for(new_holds.wait(), 5)
    assert written == [("stalled", "first"), ("new", "first")]  # reclaimed, written again

    # The stalled owner wakes up while the new one holds the lease and rewrites "first": it
    # must not settle the new owner's copy nor take the next item.
    wake_up.set()
    await stalled_owner.idle(limit=5)
    queue, _, processing = stalled_owner.queue_keys(CHANNEL)
    assert await redis.lrange(processing, 0, -1) == [_item("first").encode()]  # untouched
    assert len(await redis.lrange(queue, 0, -1)) == 3  # nothing taken

    release_new.set()
    await new_owner.idle(limit=5)
    assert [ref for who, ref in written if who == "stalled"] == ["first"]
    assert [ref for who, ref in written if who == "new"] == ["first", "second", "third", "fourth"]
    assert await redis.llen(queue) == 0
    assert await redis.llen(processing) == 0


async def test_the_item_scripts_refuse_a_stale_token(redis: RedisClient) -> None:
    outbox = _outbox(redis)
    await redis.rpush(outbox.key(CHANNEL), _item("x").encode())
    await redis.set(outbox.lease_key(CHANNEL), "successor")
    raw = _item("x").encode()
    for script, args in ((outbox._take, ()), (outbox._settle, (raw,)), (outbox._put_back, (raw,))):
        with pytest.raises(LeaseLostError):
            await outbox._script(script, CHANNEL, "stalled", *args)
    assert await outbox._script(outbox._take, CHANNEL, "successor") == raw
    await redis.delete(outbox.lease_key(CHANNEL))  # lapsed, nobody holds it: may settle
    assert await outbox._script(outbox._settle, CHANNEL, "stalled", raw) == 1
    with pytest.raises(LeaseLostError):  # but never take
        await outbox._script(outbox._take, CHANNEL, "stalled")


async def test_an_owner_whose_lease_lapsed_with_no_successor_settles_its_item(
    redis: RedisClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nobody took over: the late owner may still mark its write done (no duplicate later)."""
    monkeypatch.setattr("integrations.slack.outbox.LEASE_TTL", timedelta(seconds=0.3))
    outbox = _outbox(redis)
    written: list[str] = []
    wake_up = asyncio.Event()

    async def slow(channel: str, item: OutboxItem, slack: PacedSlack) -> None:
        written.append(item.ref)
        await wake_up.wait()

    outbox.register(slow, ItemKind.NOTICE)
    monkeypatch.setattr(outbox, "_keep_lease", _frozen)
    await outbox.enqueue(CHANNEL, _item("only"))
    await _until(lambda: written == ["only"])
    await asyncio.sleep(0.5)
    assert await redis.get(outbox.lease_key(CHANNEL)) is None  # lapsed, nobody took it
    wake_up.set()
    await outbox.idle(limit=5)
    assert await redis.llen(outbox.queue_keys(CHANNEL)[2]) == 0
    assert written == ["only"]


async def test_an_item_kind_with_no_handler_is_dropped_not_stuck(redis: RedisClient) -> None:
    outbox = _outbox(redis)
    seen: list[str] = []

    async def notices(channel: str, item: OutboxItem, slack: PacedSlack) -> None:
        seen.append(item.ref)

    outbox.register(notices, ItemKind.NOTICE)
    with pytest.raises(ValueError, match="already has a handler"):
        outbox.register(notices, ItemKind.NOTICE)
    await outbox.enqueue(CHANNEL, OutboxItem(ItemKind.DIGEST, "1700000000.000100"))
    await outbox.enqueue(CHANNEL, _item("after"))
    await _until(lambda: seen == ["after"])
    await outbox.idle(limit=5)
    queue, _, processing = outbox.queue_keys(CHANNEL)
    assert await redis.llen(queue) == 0
    assert await redis.llen(processing) == 0


async def test_a_dropped_connection_is_kept_however_long_it_lasts(
    redis: RedisClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack drops the connection more often than slack_sdk retries it (aiohttp errors are not
    OSErrors): the item stays, however many times, and a later bug in handling it still gets
    its full MAX_ATTEMPTS — the outage before does not count."""
    monkeypatch.setattr("integrations.slack.outbox.MAX_BACKOFF_SECONDS", 0)
    outbox = _outbox(redis)
    calls: list[str] = []

    async def flaky(channel: str, item: OutboxItem, slack: PacedSlack) -> None:
        calls.append(item.ref)
        if len(calls) <= MAX_ATTEMPTS + 2:
            raise aiohttp.ServerDisconnectedError()
        if len(calls) == MAX_ATTEMPTS + 3:
            raise KeyError("a bug, once")

    outbox.register(flaky, ItemKind.NOTICE)
    await outbox.enqueue(CHANNEL, _item("kept"))
    await _until(lambda: len(calls) == MAX_ATTEMPTS + 4, limit=20)
    await outbox.idle(limit=5)
    queue, _, processing = outbox.queue_keys(CHANNEL)
    assert await redis.llen(queue) == 0
    assert await redis.llen(processing) == 0  # written on the last call, not dropped
