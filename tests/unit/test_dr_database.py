"""dr activate's database step on a stand-in for the RDS calls: a PromoteReadReplica refused
because the replica is busy is never shown as sent, and is sent again once it is available; one
refused while available fails the step at once (no waiting out the RTO)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from commands.operations.dr_run import database_step
from core.clock import ManualClock
from core.config import load_config
from examples import EXAMPLE_CONFIG
from integrations.aws.dr_actions import PROMOTED_TAG, DrDatabaseState
from integrations.aws.errors import AwsError

CONFIG = load_config(EXAMPLE_CONFIG)
DR = CONFIG.dr
assert DR is not None
NAME = str(DR.db_instance)
INPUTS = {"kind": "replica", "identifier": NAME, "arn": "arn:x", "resource_id": "db-1"}


def replica(status: str, source: str | None = "arn:src", **tags: str) -> DrDatabaseState:
    return DrDatabaseState(NAME, "arn:x", "db-1", status, source, tags)


@dataclass
class Runtime:
    clock: ManualClock = field(
        default_factory=lambda: ManualClock(datetime(2026, 12, 5, tzinfo=UTC))
    )
    task_poll: float = 0.0


@dataclass
class Rds:
    """Refuses PromoteReadReplica unless the replica is available; tags it when accepted."""

    state: DrDatabaseState
    refuse_always: bool = False
    promotes: list[str] = field(default_factory=list)

    async def database(self, _region: str, _name: str) -> DrDatabaseState:
        return self.state

    async def promote(self, _region: str, _name: str) -> DrDatabaseState:
        self.promotes.append(self.state.status)
        if self.refuse_always or self.state.status != "available":
            raise AwsError(
                operation="PromoteReadReplica",
                code="InvalidDBInstanceState",
                message=f"DB instance is {self.state.status}",
                answered=True,
            )
        self.state = replica("modifying")
        return self.state

    async def tag(self, _region: str, _arn: str, tags: dict[str, str]) -> None:
        self.state = DrDatabaseState(NAME, "arn:x", "db-1", self.state.status, "arn:src", tags)


async def test_a_promote_refused_while_modifying_is_sent_again_once_available() -> None:
    rds = Rds(replica("modifying"))
    runtime = Runtime()
    seen: list[str] = []

    async def waiting(status: str) -> None:
        seen.append(status)
        runtime.clock.advance(60)
        if rds.state.status == "modifying" and PROMOTED_TAG not in rds.state.tags:
            rds.state = replica("available")  # the modification ended: still a replica
        elif PROMOTED_TAG in rds.state.tags:
            rds.state = DrDatabaseState(NAME, "arn:x", "db-1", "available", None, rds.state.tags)

    said = await database_step(runtime, rds, DR, INPUTS, request_id="req1", waiting=waiting)  # type: ignore[arg-type]
    assert said == "promoted, available"
    assert rds.promotes == ["modifying", "available"]  # refused, then sent again and accepted
    assert seen[0].startswith("PromoteReadReplica refused (InvalidDBInstanceState: DB instance")
    assert "the replica is modifying, sent again once it is available" in seen[0]
    assert not any(s.startswith("PromoteReadReplica sent") for s in seen[:1])
    assert any(s.startswith("PromoteReadReplica sent") for s in seen)
    assert rds.state.tags == {PROMOTED_TAG: "req1"}


async def test_a_promote_refused_while_available_fails_the_step_at_once() -> None:
    rds = Rds(replica("available"), refuse_always=True)
    runtime = Runtime()

    async def waiting(_status: str) -> None:
        runtime.clock.advance(3600)

    with pytest.raises(AwsError, match="InvalidDBInstanceState"):
        await database_step(runtime, rds, DR, INPUTS, request_id="r", waiting=waiting)  # type: ignore[arg-type]
    assert runtime.clock.now() == datetime(2026, 12, 5, tzinfo=UTC)  # no wait at all
    assert rds.promotes == ["available"]


async def test_a_refusal_after_the_source_is_gone_is_a_promotion_under_way() -> None:
    rds = Rds(replica("modifying"), refuse_always=True)
    runtime = Runtime()
    seen: list[str] = []

    async def database(_region: str, _name: str) -> DrDatabaseState:
        return rds.state

    async def promote(_region: str, _name: str) -> DrDatabaseState:
        rds.promotes.append("x")
        rds.state = replica("modifying", source=None)  # an earlier promotion, under way
        raise AwsError(
            operation="PromoteReadReplica", code="InvalidDBInstanceState", message="busy",
            answered=True,
        )  # fmt: skip

    rds.promote = promote  # type: ignore[method-assign]

    async def waiting(status: str) -> None:
        seen.append(status)
        rds.state = replica("available", source=None)

    said = await database_step(runtime, rds, DR, INPUTS, request_id="r", waiting=waiting)  # type: ignore[arg-type]
    assert seen[0] == "promotion under way (modifying)"
    assert said == "promoted, available"
    assert rds.promotes == ["x"]
