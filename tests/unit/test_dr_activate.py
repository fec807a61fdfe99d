"""dr activate's pure parts: the thread's progress message, the restored instance's name, which
record one UPSERT can switch, when a service or the database counts as done, the bounded wait,
and the replicated-backups path of the database step (on a stand-in for the AWS calls)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from commands.operations.dr_activate import DrActivateAction, dr_config
from commands.operations.dr_board import Step, StepState, against_rto, board_text
from commands.operations.dr_plan import (
    ServiceTarget,
    database_part,
    restore_target,
    short_db,
)
from commands.operations.dr_record import simple_record
from commands.operations.dr_run import database_step, wait_until
from commands.requests import DrActivateRequest
from core.clock import ManualClock
from core.config import load_config
from core.errors import ChatOpsError
from examples import EXAMPLE_CONFIG
from integrations.aws.dr_actions import (
    PROMOTED_TAG,
    DrDatabaseState,
    RecordSet,
    ReplicatedBackup,
)

CONFIG = load_config(EXAMPLE_CONFIG)
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/dhanam-api@sha256:" + "ab" * 32


def test_the_progress_message_lists_every_step_with_its_state() -> None:
    steps = [
        Step("1. promote dhanam-production-dr", StepState.DONE, "promoted, available"),
        Step("2. api in dhanam-dr → v1.3.0 at 2 tasks", StepState.RUNNING, "registering"),
        Step("3. api.dhanam.io → dr.example.com"),
    ]
    text = board_text("us-west-2", steps, timedelta(seconds=42), timedelta(hours=4))
    assert text.splitlines() == [
        ":rotating_light: DR activation in us-west-2 · 42 s of the 4 h RTO",
        ":white_check_mark: 1. promote dhanam-production-dr — promoted, available",
        ":arrows_counterclockwise: 2. api in dhanam-dr → v1.3.0 at 2 tasks — registering",
        ":white_circle: 3. api.dhanam.io → dr.example.com",
    ]
    steps[1].state, steps[1].detail = StepState.FAILED, "AWS refused UpdateService"
    steps[2].state = StepState.NOT_RUN
    stopped = board_text("us-west-2", steps, timedelta(minutes=3), timedelta(hours=4), ended=False)
    assert (
        stopped.splitlines()[0]
        == ":x: DR activation in us-west-2 stopped after 3 min of the 4 h RTO"
    )
    assert (
        stopped.splitlines()[3] == ":heavy_minus_sign: 3. api.dhanam.io → dr.example.com — not run"
    )
    done = board_text("us-west-2", steps[:1], timedelta(hours=5), timedelta(hours=4), ended=True)
    assert (
        done.splitlines()[0]
        == ":white_check_mark: DR active in us-west-2 after 5 h — over the 4 h RTO"
    )


def test_elapsed_time_against_the_rto() -> None:
    assert against_rto(timedelta(seconds=90), timedelta(hours=4)) == "1 min 30 s of the 4 h RTO"
    assert against_rto(timedelta(hours=4, minutes=1), timedelta(hours=4)) == (
        "4 h 1 min — over the 4 h RTO"
    )


def test_the_restored_instance_has_one_name_per_dr_configuration() -> None:
    assert restore_target("dhanam-production") == "dhanam-production-dr-restore"
    long = restore_target("dhanam-" + "x" * 70)
    assert long.endswith("x-dr-restore")
    assert len(long) == 63
    assert short_db("arn:aws:rds:us-east-1:123456789012:db:dhanam-production") == (
        "dhanam-production (us-east-1)"
    )


def record(**changes: Any) -> RecordSet:
    fields: dict[str, Any] = {
        "name": "api.dhanam.io.", "type": "CNAME", "ttl": 60, "values": ("primary.example.com",),
        "alias": False, "routed": False,
    }  # fmt: skip
    return RecordSet(**{**fields, **changes})


def test_only_one_simple_cname_is_switched() -> None:
    assert simple_record([], "api.dhanam.io") is None  # the UPSERT creates it
    assert simple_record([record()], "api.dhanam.io") == record()
    with pytest.raises(ChatOpsError, match="2 record sets with routing policies"):
        simple_record([record(routed=True), record(routed=True)], "api.dhanam.io")
    with pytest.raises(ChatOpsError, match="is an alias A record"):
        simple_record([record(type="A", alias=True)], "api.dhanam.io")
    with pytest.raises(ChatOpsError, match="is a TXT record"):
        simple_record([record(type="TXT")], "api.dhanam.io")
    assert record(values=("DR.example.com.",)).points_at("dr.example.com")
    assert not record(values=("dr.example.com", "primary.example.com")).points_at("dr.example.com")


def test_a_service_is_done_with_production_s_images() -> None:
    target = ServiceTarget("api", "dhanam-api", "api", {"api": IMAGE}, 2, "v1.3.0")
    assert target.label == "v1.3.0 at 2 tasks"
    assert target.runs_images({"containerDefinitions": [{"name": "api", "image": IMAGE}]})
    assert not target.runs_images({"containerDefinitions": [{"name": "api", "image": "x:v1"}]})
    assert ServiceTarget.of("api", target.inputs()) == target


def test_a_replica_counts_as_promoted_without_a_source_or_with_the_tag() -> None:
    replica = DrDatabaseState("dr", "arn", "db-1", "available", "arn:source", {})
    assert not replica.promoted
    assert DrDatabaseState("dr", "arn", "db-1", "available", None, {}).promoted
    assert DrDatabaseState("dr", "arn", "db-1", "available", "arn:s", {PROMOTED_TAG: "r"}).promoted


@dataclass
class Runtime:
    clock: ManualClock
    task_poll: float = 0.0


async def test_the_wait_ends_at_its_limit_saying_the_status() -> None:
    runtime = Runtime(ManualClock(datetime(2026, 12, 5, tzinfo=UTC)))
    seen: list[str] = []

    async def look() -> tuple[bool, str]:
        runtime.clock._now += timedelta(minutes=30)
        return False, "modifying"

    async def waiting(status: str) -> None:
        seen.append(status)

    with pytest.raises(ChatOpsError, match=r"db is still modifying after 1 h \(the wait ends"):
        await wait_until(runtime, "db", timedelta(hours=1), look, waiting)  # type: ignore[arg-type]
    assert seen == ["modifying, waited 30 min"]


@dataclass
class FakeActions:
    """The replicated-backups path's calls; the restored instance appears on the restore."""

    instances: dict[str, DrDatabaseState] = field(default_factory=dict)
    restores: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    async def database(self, region: str, identifier: str) -> DrDatabaseState | None:
        return self.instances.get(identifier)

    async def restore_from_backup(
        self, region: str, arn: str, target: str, tags: dict[str, str]
    ) -> DrDatabaseState:
        self.restores.append((arn, target, tags))
        state = DrDatabaseState(target, f"arn:{target}", "db-2", "available", None, tags)
        self.instances[target] = state
        return state


async def test_the_backup_path_restores_once_then_finds_its_instance() -> None:
    runtime = Runtime(ManualClock(datetime(2026, 12, 5, tzinfo=UTC)))
    dr = CONFIG.dr
    assert dr is not None
    actions = FakeActions()
    inputs = {"kind": "backups", "arn": "arn:aws:rds:us-west-2:1:auto-backup:ab-1",
              "source": "dhanam-production", "target": "dhanam-production-dr-restore"}  # fmt: skip
    statuses: list[str] = []

    async def waiting(status: str) -> None:
        statuses.append(status)

    said = await database_step(runtime, actions, dr, inputs, request_id="req1", waiting=waiting)  # type: ignore[arg-type]
    assert said == "restored, available"
    assert actions.restores == [
        (inputs["arn"], "dhanam-production-dr-restore",
         {"dhanam:request": "req1", "dhanam:restored-from": inputs["arn"]}),
    ]  # fmt: skip
    again = await database_step(runtime, actions, dr, inputs, request_id="req1", waiting=waiting)  # type: ignore[arg-type]
    assert again == "already restored, available"
    assert len(actions.restores) == 1


def test_dr_activate_needs_a_dr_table_and_takes_the_primary_environment() -> None:
    without = CONFIG.model_copy(update={"dr": None})
    with pytest.raises(ChatOpsError, match=r"DR is not configured — add a \[dr\] table"):
        DrActivateAction.from_request(DrActivateRequest(), without, ManualClock())
    with pytest.raises(ChatOpsError):
        dr_config(without)
    staging_only = CONFIG.model_copy(
        update={"environments": {"staging": CONFIG.environments["staging"]}}
    )
    action = DrActivateAction.from_request(DrActivateRequest(), staging_only, ManualClock())
    assert action.env == "staging"
    assert action.title() == "Activate DR in us-west-2"
    assert action.lock_label == "DR activation in us-west-2"


async def test_every_wait_shares_one_rto_from_the_start_of_the_activation() -> None:
    """The database took 3 h 50 min of the 4 h RTO: the next wait has 10 min left, not 4 h."""
    runtime = Runtime(ManualClock(datetime(2026, 12, 5, 4, tzinfo=UTC)))
    since = runtime.clock.now() - timedelta(hours=3, minutes=50)
    looks = 0

    async def look() -> tuple[bool, str]:
        nonlocal looks
        looks += 1
        runtime.clock._now += timedelta(minutes=5)
        return False, "pending"

    async def waiting(_status: str) -> None:
        return None

    with pytest.raises(ChatOpsError, match=r"still pending after 4 h \(the wait ends at the 4 h"):
        await wait_until(runtime, "x", timedelta(hours=4), look, waiting, since=since)  # type: ignore[arg-type]
    assert looks == 2  # 3 h 55 min, then 4 h: stopped


async def test_a_second_request_adopts_the_instance_an_earlier_one_began_restoring() -> None:
    """Request 1 started the restore and stopped; request 2 plans the same instance, adopts it
    (one RestoreDBInstanceToPointInTime in all) — not a second database."""
    dr = CONFIG.dr
    assert dr is not None
    arn = "arn:aws:rds:us-west-2:1:auto-backup:ab-1"
    dr = dr.model_copy(update={"db_instance": None, "automated_backup_arn": arn})
    actions = Backups()
    first, _, facts = await database_part(actions, dr)  # type: ignore[arg-type]
    assert (first["target"], facts) == ("dhanam-production-dr-restore", [])
    runtime = Runtime(ManualClock(datetime(2026, 12, 5, tzinfo=UTC)))

    async def waiting(_status: str) -> None:
        return None

    await database_step(runtime, actions, dr, first, request_id="req1", waiting=waiting)  # type: ignore[arg-type]
    actions.instances["dhanam-production-dr-restore"] = replace(
        actions.instances["dhanam-production-dr-restore"], status="creating"
    )
    second, _, facts = await database_part(actions, dr)  # type: ignore[arg-type]
    assert second == first  # the same inputs: the same instance
    assert facts == [
        "dhanam-production-dr-restore already exists (creating): an earlier activation restored "
        "it from these backups; it is adopted, not restored again"
    ]
    actions.instances["dhanam-production-dr-restore"] = replace(
        actions.instances["dhanam-production-dr-restore"], status="available"
    )
    said = await database_step(runtime, actions, dr, second, request_id="req2", waiting=waiting)  # type: ignore[arg-type]
    assert said == "already restored, available"
    assert len(actions.restores) == 1

    actions.instances["dhanam-production-dr-restore"] = replace(
        actions.instances["dhanam-production-dr-restore"], status="incompatible-restore"
    )
    with pytest.raises(ChatOpsError, match="is incompatible-restore: delete it"):
        await database_part(actions, dr)  # type: ignore[arg-type]
    actions.instances["dhanam-production-dr-restore"] = replace(
        actions.instances["dhanam-production-dr-restore"], status="available", tags={}
    )
    with pytest.raises(ChatOpsError, match="was not restored by dr activate from"):
        await database_part(actions, dr)  # type: ignore[arg-type]


@dataclass
class Backups(FakeActions):
    async def newest_backup(self, region: str, arn: str) -> ReplicatedBackup:
        latest = datetime(2026, 12, 5, tzinfo=UTC)
        return ReplicatedBackup(arn, "dhanam-production", latest, "replicating")
