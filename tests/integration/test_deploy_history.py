"""DeployHistory against the session's real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from core.clock import ManualClock
from core.errors import StoreUnavailableError
from integrations.deploy_history import DeployHistory, DeployRecord, history_key
from integrations.redis_client import RedisClient, create_redis


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[RedisClient]:
    client = create_redis(redis_url)
    yield client
    await client.aclose()


def record(
    n: int, clock: ManualClock, *, env: str = "production", kind: str = "deploy"
) -> DeployRecord:
    return DeployRecord.model_validate(
        {
            "service": "api",
            "env": env,
            "previous_task_definition": f"dhanam-api:{n}",
            "new_task_definition": f"dhanam-api:{n + 1}",
            "previous_image": f"repo:v{n}",
            "new_image": f"repo@sha256:{n:064x}",
            "tag": f"v{n + 1}",
            "digest": f"sha256:{n:064x}",
            "requested_by": "U0REQ",
            "approved_by": ["U0APP"],
            "request_id": f"r{n}",
            "at": clock.now(),
            "kind": kind,
        }
    )


async def test_records_newest_first_per_service_and_env(redis: RedisClient) -> None:
    clock = ManualClock()
    history = DeployHistory(redis, clock)
    assert await history.last("api", "production") is None
    assert await history.recent("api", "production", 5) == []
    first = record(1, clock)
    await history.record(first)
    clock.advance(60)
    second = record(2, clock, kind="rollback")
    await history.record(second)
    await history.record(record(7, clock, env="staging"))
    assert await history.recent("api", "production", 10) == [second, first]
    assert await history.last("api", "production") == second
    assert [r.request_id for r in await history.recent("api", "staging", 10)] == ["r7"]
    assert await history.recent("api", "production", 0) == []


async def test_key_is_hash_tagged(redis: RedisClient) -> None:
    clock = ManualClock()
    await DeployHistory(redis, clock).record(record(1, clock))
    assert history_key("api", "production") == "dhanam:{hist:api:production}"
    assert await redis.llen("dhanam:{hist:api:production}") == 1


async def test_capped_at_fifty(redis: RedisClient) -> None:
    clock = ManualClock()
    history = DeployHistory(redis, clock)
    for n in range(55):
        await history.record(record(n, clock))
    assert await redis.llen(history_key("api", "production")) == 50
    kept = await history.recent("api", "production", 100)
    assert [r.request_id for r in kept] == [f"r{n}" for n in range(54, 4, -1)]


async def test_deployed_within_uses_the_clock(redis: RedisClient) -> None:
    clock = ManualClock()
    history = DeployHistory(redis, clock)
    await history.record(record(1, clock))
    clock.advance(600)
    assert await history.deployed_within("api", "production", timedelta(minutes=15)) is not None
    clock.advance(600)
    assert await history.deployed_within("api", "production", timedelta(minutes=15)) is None
    assert await history.deployed_within("web", "production", timedelta(minutes=15)) is None


async def test_unreadable_entries_are_skipped(redis: RedisClient) -> None:
    clock = ManualClock()
    history = DeployHistory(redis, clock)
    await history.record(record(1, clock))
    await redis.lpush(history_key("api", "production"), "{not json")
    assert [r.request_id for r in await history.recent("api", "production", 10)] == ["r1"]


async def test_redis_down_is_store_unavailable() -> None:
    dead: Redis = create_redis("redis://127.0.0.1:1/0", timeout=0.2)  # type: ignore[assignment]
    history = DeployHistory(dead, ManualClock())
    with pytest.raises(StoreUnavailableError):
        await history.record(record(1, ManualClock()))
    with pytest.raises(StoreUnavailableError):
        await history.recent("api", "production", 5)
    await dead.aclose()


def test_record_is_frozen_and_validated() -> None:
    one = record(1, ManualClock())
    with pytest.raises(ValueError, match="frozen"):
        one.tag = "v9"  # type: ignore[misc]
    with pytest.raises(ValueError, match="kind"):
        DeployRecord.model_validate({**one.model_dump(), "kind": "scale"})
