"""What production last ran, per service, as the bot last read it: every container's image and
the desired count — kept so `dr activate` can plan when the primary region cannot be read (the
outage DR is for).

Written each time the bot reads production's services successfully (`dr activate`'s plan,
`/dhanam dr status`, the sev1 checklist's DR check); read by `dr activate` only when the fresh
read fails or runs out of its time budget. Key `dhanam:{drprod:<env>}`: a Redis hash, one field
per service (the config's name), each a JSON `ProductionService` with the time it was read.

Every Redis failure surfaces as StoreUnavailableError.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, ValidationError

from core.redis import RedisClient, call, redis_key
from integrations.aws.images import parse_image

IMAGE_TAG_KEY = "image-tag"  # the tag deploys set on a revision (commands/operations/deploy.py)


class ProductionService(BaseModel):
    """One production service as read at ``at``: what `dr activate` copies to the DR region."""

    model_config = ConfigDict(frozen=True)

    images: dict[str, str]  # every container -> its image reference
    desired: int
    image_tag: str | None  # the configured container's tag, or the revision's image-tag
    task_definition: str  # the revision's ARN
    at: datetime


def production_service(
    definition: Mapping[str, Any], desired: int, container: str, at: datetime
) -> ProductionService:
    """From a DescribeTaskDefinition answer (with its tags) and the service's desired count."""
    images = {
        str(c.get("name")): str(c["image"])
        for c in definition.get("containerDefinitions", [])
        if c.get("image")
    }
    tags = {t.get("key"): t.get("value") for t in definition.get("tags", [])}
    image = images.get(container)
    tag = (parse_image(image).tag if image else None) or tags.get(IMAGE_TAG_KEY)
    return ProductionService(
        images=images,
        desired=desired,
        image_tag=str(tag) if tag else None,
        task_definition=str(definition.get("taskDefinitionArn") or ""),
        at=at,
    )


def snapshot_key(env: str) -> str:
    return redis_key(f"{{drprod:{env}}}")


class ProductionSnapshots:
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    async def save(self, env: str, service: str, read: ProductionService) -> None:
        key = snapshot_key(env)
        await call(lambda: self._redis.hset(key, service, read.model_dump_json()))

    async def get(self, env: str, service: str) -> ProductionService | None:
        key = snapshot_key(env)
        raw = cast("str | None", await call(lambda: self._redis.hget(key, service)))
        if raw is None:
            return None
        try:
            return ProductionService.model_validate_json(raw)
        except ValidationError:
            return None  # written by an incompatible version: as if never read
