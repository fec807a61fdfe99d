"""The Redis ground every store stands on: the client type, the key prefix, the error wrapper.

Every key the bot writes starts with ``PREFIX``; build one with ``redis_key(...)``. Every command a
store sends goes through ``call``, which turns a Redis failure into StoreUnavailableError so
callers fail closed (no Redis, no approval). redis-py types a reply as ``bytes | str``; our
clients decode (``decode_responses=True``), so a caller that wants ``str`` says so with
``cast("list[str]", await call(...))``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeAlias, TypeVar

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from core.errors import StoreUnavailableError

RedisClient: TypeAlias = Redis | RedisCluster

PREFIX = "dhanam:"

T = TypeVar("T")


def redis_key(*parts: str) -> str:
    """``dhanam:`` and the parts joined by ``:`` (a part may carry a ``{hash tag}``)."""
    return PREFIX + ":".join(parts)


async def call(op: Callable[[], Awaitable[T]]) -> T:
    """Run one Redis operation; a Redis, socket or timeout failure becomes
    StoreUnavailableError (the operation's own result type is kept)."""
    try:
        return await op()
    except (RedisError, OSError, TimeoutError) as exc:
        raise StoreUnavailableError(f"{type(exc).__name__}: {exc}") from exc
