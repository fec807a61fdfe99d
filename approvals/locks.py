"""Holds placed by people with `/dhanam lock` (heaven-style), kept in `dhanam:{hold:<scope>}`.

The execution lock (one risky action at a time per scope) is a store lease named
`exec:<scope>`; see ApprovalStore.acquire/renew/release.
"""

from __future__ import annotations

from typing import Any, cast

from approvals.models import from_ms, utc_ms
from approvals.policy import Hold
from core.clock import Clock
from core.redis import RedisClient, call, redis_key


def hold_key(scope: str) -> str:
    return redis_key(f"{{hold:{scope}}}")


class Locks:
    def __init__(self, redis: RedisClient, clock: Clock) -> None:
        self._redis = redis
        self._clock = clock

    # -- holds -----------------------------------------------------------------------------
    async def hold(self, scope: str, reason: str, by: str) -> Hold | None:
        """Place a hold; returns the existing one instead when there already is one."""
        key = hold_key(scope)
        fields = {"reason": reason, "by": by, "at": str(utc_ms(self._clock.now()))}

        async def place() -> bool:
            created: int = await self._redis.hsetnx(key, "by", by)
            if created:
                await self._redis.hset(key, mapping=cast(Any, fields))
            return bool(created)

        if await call(place):
            return None
        return await self.get_hold(scope)

    async def release_hold(self, scope: str) -> Hold | None:
        hold = await self.get_hold(scope)
        if hold is not None:
            await call(lambda: self._redis.delete(hold_key(scope)))
        return hold

    async def get_hold(self, scope: str) -> Hold | None:
        fields = cast("dict[str, str]", await call(lambda: self._redis.hgetall(hold_key(scope))))
        if not fields.get("by"):
            return None
        at = from_ms(fields["at"]) if fields.get("at") else self._clock.now()
        return Hold(scope=scope, reason=fields.get("reason", ""), by=fields["by"], at=at)
