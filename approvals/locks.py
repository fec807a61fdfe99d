"""Holds placed by people with `/dhanam lock` (heaven-style), kept in `dhanam:{hold:<scope>}`.

The execution lock (one risky action at a time per scope) is a store lease named
`exec:<scope>`; see ApprovalStore.acquire/renew/release.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

from redis.exceptions import RedisError

from approvals.models import from_ms, utc_ms
from approvals.policy import Hold
from core.clock import Clock
from core.errors import StoreUnavailableError
from integrations.redis_client import RedisClient

PREFIX = "dhanam:"


class Locks:
    def __init__(self, redis: RedisClient, clock: Clock) -> None:
        self._redis = redis
        self._clock = clock

    async def _call(self, op: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await op()
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailableError(f"{type(exc).__name__}: {exc}") from exc

    # -- holds -----------------------------------------------------------------------------
    async def hold(self, scope: str, reason: str, by: str) -> Hold | None:
        """Place a hold; returns the existing one instead when there already is one."""
        key = f"{PREFIX}{{hold:{scope}}}"
        fields = {"reason": reason, "by": by, "at": str(utc_ms(self._clock.now()))}

        async def place() -> bool:
            created: int = await self._redis.hsetnx(key, "by", by)
            if created:
                await self._redis.hset(key, mapping=cast(Any, fields))
            return bool(created)

        if await self._call(place):
            return None
        return await self.get_hold(scope)

    async def release_hold(self, scope: str) -> Hold | None:
        hold = await self.get_hold(scope)
        if hold is not None:
            await self._call(lambda: self._redis.delete(f"{PREFIX}{{hold:{scope}}}"))
        return hold

    async def get_hold(self, scope: str) -> Hold | None:
        fields: dict[str, str] = await self._call(
            lambda: self._redis.hgetall(f"{PREFIX}{{hold:{scope}}}")
        )
        if not fields.get("by"):
            return None
        at = from_ms(fields["at"]) if fields.get("at") else self._clock.now()
        return Hold(scope=scope, reason=fields.get("reason", ""), by=fields["by"], at=at)
