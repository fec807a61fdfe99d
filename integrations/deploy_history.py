"""The bot's deploy history: per service and environment, newest first, the last 50 changes.

Key `dhanam:{hist:<service>:<env>}`: a Redis list of JSON `DeployRecord`s (one key, so one
slot on Redis Cluster). Rollback reads `last()` to find the revision that ran before; the alarm
router reads `deployed_within()` to offer a Roll back button after a recent deploy.

Every Redis failure surfaces as StoreUnavailableError.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.clock import Clock
from core.redis import RedisClient, call, redis_key

KEEP = 50


class DeployRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    service: str  # the config name ("api"), not the ECS service name
    env: str
    previous_task_definition: str
    new_task_definition: str
    previous_image: str
    new_image: str
    tag: str | None = None
    digest: str | None = None
    requested_by: str | None = None
    approved_by: list[str] = Field(default_factory=list)
    request_id: str | None = None
    at: datetime
    kind: Literal["deploy", "rollback"] = "deploy"


def history_key(service: str, env: str) -> str:
    return redis_key(f"{{hist:{service}:{env}}}")


class DeployHistory:
    def __init__(self, redis: RedisClient, clock: Clock, *, keep: int = KEEP) -> None:
        self._redis = redis
        self._clock = clock
        self._keep = keep

    async def record(self, record: DeployRecord) -> None:
        key = history_key(record.service, record.env)

        async def write() -> None:
            pipe = self._redis.pipeline(transaction=True)
            pipe.lpush(key, record.model_dump_json())
            pipe.ltrim(key, 0, self._keep - 1)
            await pipe.execute()

        await call(write)

    async def recent(self, service: str, env: str, n: int = 10) -> list[DeployRecord]:
        """The newest `n` records (at most the 50 kept), newest first."""
        if n <= 0:
            return []
        key = history_key(service, env)
        raw = cast("list[str]", await call(lambda: self._redis.lrange(key, 0, n - 1)))
        records = []
        for item in raw:
            try:
                records.append(DeployRecord.model_validate_json(item))
            except ValidationError:
                continue  # written by an incompatible version: skip rather than fail status
        return records

    async def last(self, service: str, env: str) -> DeployRecord | None:
        records = await self.recent(service, env, 1)
        return records[0] if records else None

    async def deployed_within(
        self, service: str, env: str, window: timedelta
    ) -> DeployRecord | None:
        """The last record if it is newer than `window` (by the injected clock), else None."""
        last = await self.last(service, env)
        if last is None or self._clock.now() - last.at > window:
            return None
        return last
