"""dr activate's read of production (commands/operations/dr_production.py): a primary that does
not answer costs at most the source budget and is replaced by the snapshot, said on the card;
the targets planned from the snapshot are the ones a fresh read gives."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from commands.operations.dr_production import production_part
from core.clock import ManualClock
from core.config import load_config
from core.errors import ChatOpsError
from examples import EXAMPLE_CONFIG
from integrations.dr_snapshot import ProductionService, production_service

CONFIG = load_config(EXAMPLE_CONFIG)
NOW = datetime(2026, 12, 5, 14, 30, tzinfo=UTC)
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/dhanam-api@sha256:" + "ab" * 32
DEFINITION = {
    "taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/dhanam-api:7",
    "containerDefinitions": [{"name": "api", "image": IMAGE}, {"name": "log", "image": "fb:1"}],
    "tags": [{"key": "image-tag", "value": "v1.3.0"}],
}


@dataclass
class Service:
    task_definition_arn: str
    desired: int


class HangingAws:
    """The primary's ECS: every call hangs (a region that accepts connections, answers none)."""

    async def describe_service(self, *_args: Any) -> Service:
        await asyncio.sleep(30)
        raise AssertionError("not reached")


class Aws:
    async def describe_service(self, *_args: Any) -> Service:
        return Service(str(DEFINITION["taskDefinitionArn"]), 3)

    async def describe_task_definition(self, *_args: Any) -> dict[str, Any]:
        return DEFINITION


@dataclass
class Snapshots:
    kept: dict[tuple[str, str], ProductionService] = field(default_factory=dict)

    async def save(self, env: str, service: str, read: ProductionService) -> None:
        self.kept[(env, service)] = read

    async def get(self, env: str, service: str) -> ProductionService | None:
        return self.kept.get((env, service))


@dataclass
class Runtime:
    aws: Any
    dr_snapshots: Snapshots | None
    clock: ManualClock = field(default_factory=lambda: ManualClock(NOW))
    config: Any = field(
        default_factory=lambda: CONFIG.model_copy(
            update={"status": CONFIG.status.model_copy(update={"source_timeout_seconds": 0.2})}
        )
    )


async def test_a_hanging_primary_costs_the_budget_and_the_snapshot_is_used() -> None:
    snapshots = Snapshots()
    fresh, facts = await production_part(Runtime(Aws(), snapshots), "production", ["api"])  # type: ignore[arg-type]
    assert facts == []
    assert snapshots.kept[("production", "api")] == fresh["api"]
    assert fresh["api"].images == {"api": IMAGE, "log": "fb:1"}
    assert (fresh["api"].desired, fresh["api"].image_tag) == (3, "v1.3.0")

    runtime = Runtime(HangingAws(), snapshots)
    runtime.clock.advance(12 * 60)
    started = time.perf_counter()
    kept, facts = await production_part(runtime, "production", ["api"])  # type: ignore[arg-type]
    assert time.perf_counter() - started < 1.0  # the 0.2 s budget, not the 30 s hang
    assert kept == fresh  # the same images and count: the same targets, the same fingerprint
    assert facts == [
        "production's api could not be read (no answer within 0.2 s): using what it ran at "
        "2026-12-05 14:30 UTC, 12 min ago"
    ]


async def test_a_hanging_primary_with_no_snapshot_is_refused() -> None:
    with pytest.raises(ChatOpsError, match="no earlier read of what it runs"):
        await production_part(Runtime(HangingAws(), Snapshots()), "production", ["api"])  # type: ignore[arg-type]
    with pytest.raises(ChatOpsError, match=r"could not be read in us-east-1 \(no answer within"):
        await production_part(Runtime(HangingAws(), None), "production", ["api"])  # type: ignore[arg-type]


def test_the_snapshot_keeps_every_container_and_the_configured_ones_tag() -> None:
    read = production_service(DEFINITION, 2, "api", NOW)
    assert read.images == {"api": IMAGE, "log": "fb:1"}
    assert read.image_tag == "v1.3.0"  # pinned by digest: the revision's image-tag
    tagged = {**DEFINITION, "containerDefinitions": [{"name": "api", "image": "r/api:v2"}]}
    assert production_service(tagged, 2, "api", NOW).image_tag == "v2"
