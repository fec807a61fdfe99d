"""Redis connections: plain or cluster (ElastiCache cluster mode), with bounded timeouts.

redis-py reconnects by itself on the next command after the server comes back, so the bot
recovers from an outage without a restart; the timeouts keep a dead server from stalling it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from core.redis import RedisClient

__all__ = ["MAX_CONNECTIONS", "PingResult", "RedisClient", "create_redis", "ping"]

MAX_CONNECTIONS = 64


def create_redis(url: str, *, cluster: bool = False, timeout: float = 1.0) -> RedisClient:
    common: dict[str, Any] = {
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        "decode_responses": True,
        "health_check_interval": 15,
    }
    if cluster:
        return RedisCluster.from_url(url, **common)
    # A blocking pool: a burst of clicks waits for a free connection instead of failing with
    # "Too many connections" (redis-py's default pool raises at once when it is exhausted).
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=timeout * 2,
        # Reconnect and retry after a dropped connection (a Redis restart or failover). The
        # transition scripts are written so a retried call cannot apply twice.
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
        retry_on_error=[redis_errors.ConnectionError, redis_errors.TimeoutError],
        **common,
    )
    return Redis.from_pool(pool)  # closing the client closes its pool


@dataclass(frozen=True)
class PingResult:
    ok: bool
    latency_ms: float
    error: str | None = None


async def ping(client: RedisClient, limit: float = 1.0) -> PingResult:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(limit):
            await client.ping()
    except (RedisError, OSError, TimeoutError) as exc:
        elapsed = (time.perf_counter() - started) * 1000
        return PingResult(
            False, round(elapsed, 2), type(exc).__name__ + (f": {exc}" if str(exc) else "")
        )
    return PingResult(True, round((time.perf_counter() - started) * 1000, 2))
