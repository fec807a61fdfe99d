"""ScalingGateway, RdsGateway and the rollback / scale / db restore Actions against moto (the
Dhanam world) and the session's real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from approvals.models import Plan
from commands.operations.restore import DbRestoreAction, restore_identifier, when
from commands.operations.rollback import RollbackAction
from commands.operations.runtime import ActionRuntime
from commands.operations.scale import ScaleAction
from core.clock import ManualClock
from core.config import Config, parse_config
from core.errors import ChatOpsError
from integrations.aws.autoscaling import ScalingGateway, ecs_resource_id
from integrations.aws.clients import AwsClients
from integrations.aws.errors import AwsError
from integrations.aws.gateway import AwsGateway
from integrations.aws.rds import RdsGateway
from integrations.deploy_history import DeployHistory, DeployRecord
from integrations.redis_client import create_redis
from sandbox.aws_world import DhanamWorld

REGION = "us-east-1"
CLUSTER = "dhanam-production"
RESOURCE = "service/dhanam-production/dhanam-api"


def make_config() -> Config:
    return parse_config(
        {
            "slack": {
                "alerts_channel": "C0ALERTS",
                "incidents_channel": "C0INCIDENTS",
                "oncall_channel": "C0ONCALL",
            },
            "environments": {
                "production": {
                    "region": REGION,
                    "cluster": CLUSTER,
                    "approvers": ["U0APPROVER1", "U0APPROVER2"],
                    "db_instance": "dhanam-production",
                },
                "staging": {"region": REGION, "cluster": "dhanam-staging", "approvals_required": 0},
            },
            "services": {
                "api": {"ecs_service": "dhanam-api", "container": "api"},
                "web": {"ecs_service": "dhanam-web", "container": "web"},
            },
            "scale": {"max_tasks": 50},
        }
    )


@pytest.fixture
async def runtime(aws_gateway: AwsGateway, redis_url: str) -> AsyncIterator[ActionRuntime]:
    redis = create_redis(redis_url)
    clock = ManualClock(datetime.now(UTC))
    yield ActionRuntime(
        config=make_config(), clock=clock, aws=aws_gateway, history=DeployHistory(redis, clock)
    )
    await redis.aclose()


def client(world: DhanamWorld, name: str) -> Any:
    return boto3.client(name, endpoint_url=world.endpoint_url, region_name=REGION)  # type: ignore[call-overload]


def scalable(world: DhanamWorld, resource: str = RESOURCE) -> tuple[int, int]:
    found = client(world, "application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[resource]
    )["ScalableTargets"][0]
    return found["MinCapacity"], found["MaxCapacity"]


def service(world: DhanamWorld, name: str = "dhanam-api") -> dict[str, Any]:
    found = client(world, "ecs").describe_services(cluster=CLUSTER, services=[name])["services"]
    return dict(found[0])


def db_ids(world: DhanamWorld) -> list[str]:
    found = client(world, "rds").describe_db_instances()["DBInstances"]
    return sorted(d["DBInstanceIdentifier"] for d in found)


async def run(action: Any, runtime: ActionRuntime) -> tuple[Plan, Any]:
    plan = await action.plan(runtime)
    again = await action.plan(runtime)
    assert again.fingerprint == plan.fingerprint  # nothing moved: no drift between plans
    return plan, await action.execute(plan, runtime)


# -- gateways ------------------------------------------------------------------------------
async def test_scaling_gateway_reads_and_registers(aws_world: DhanamWorld) -> None:
    gateway = ScalingGateway(AwsClients(aws_world.endpoint_url, REGION))
    assert ecs_resource_id(CLUSTER, "dhanam-api") == RESOURCE
    target = await gateway.scalable_target(REGION, CLUSTER, "dhanam-api")
    assert target is not None
    assert (target.min_capacity, target.max_capacity) == (2, 10)
    assert await gateway.scalable_target(REGION, CLUSTER, "no-such-service") is None
    await gateway.register_scalable_target(REGION, RESOURCE, 3, 12)
    assert scalable(aws_world) == (3, 12)
    state = await gateway.set_desired_count(REGION, CLUSTER, "dhanam-api", 4)
    assert state.desired == 4
    assert service(aws_world)["desiredCount"] == 4


async def test_rds_gateway_window_restore_and_errors(aws_world: DhanamWorld) -> None:
    rds = RdsGateway(AwsClients(aws_world.endpoint_url, REGION))
    source = await rds.describe_db_instance(REGION, "dhanam-production")
    assert (source.instance_class, source.multi_az, source.backup_retention_days) == (
        "db.t3.medium",
        True,
        7,
    )
    assert source.latest_restorable is not None
    assert source.earliest_restorable is not None
    assert source.earliest_restorable <= source.latest_restorable
    assert source.latest_restorable.tzinfo is UTC
    assert await rds.find_db_instance(REGION, "nope") is None
    with pytest.raises(AwsError) as missing:
        await rds.describe_db_instance(REGION, "nope")
    assert missing.value.code == "DBInstanceNotFound"
    created = await rds.restore_to_point_in_time(REGION, source, "copy-1", None, {"a": "b"})
    assert created.identifier == "copy-1"
    assert created.multi_az
    with pytest.raises(AwsError) as taken:
        await rds.restore_to_point_in_time(REGION, source, "copy-1", None)
    assert taken.value.code == "DBInstanceAlreadyExists"
    assert "AWS refused RestoreDBInstanceToPointInTime" in taken.value.user_message


def test_restore_identifier_fits_rds_limits() -> None:
    moment = datetime(2026, 11, 26, 9, 30, 45, tzinfo=UTC)
    assert restore_identifier("dhanam-production", moment) == (
        "dhanam-production-restore-202611260930"
    )
    long = restore_identifier("a" * 40 + "-" + "b" * 30, moment)
    assert len(long) <= 63
    assert "--" not in long
    assert when(datetime(2026, 11, 26, 9, 30, tzinfo=UTC)) == "2026-11-26 09:30 UTC"


# -- rollback ------------------------------------------------------------------------------
async def test_rollback_without_history_goes_to_previous_active(
    runtime: ActionRuntime, aws_world: DhanamWorld
) -> None:
    plan, result = await run(RollbackAction(service="api", env="production"), runtime)
    assert plan.summary == "Roll back api in production: dhanam-api:3 → dhanam-api:2"
    labels = {c.label: (c.before, c.after) for c in plan.changes}
    assert labels["image tag"] == ("v1.2.0", "v1.1.0")
    assert labels["image"] == ("dhanam-api:v1.2.0", "dhanam-api:v1.1.0")
    assert labels["desired count"] == ("2", "2 (unchanged)")
    target = aws_world.task_definition_arns[("dhanam-api", 2)]
    assert plan.inputs["target_task_definition"] == target
    assert result.ok
    assert "dhanam-api:2" in result.summary
    assert "v1.1.0" in result.summary
    assert service(aws_world)["taskDefinition"].endswith("dhanam-api:2")
    listed = client(aws_world, "ecs").list_task_definitions(familyPrefix="dhanam-api")
    assert len(listed["taskDefinitionArns"]) == 3  # nothing registered
    record = await runtime.history.last("api", "production")
    assert record is not None
    assert record.kind == "rollback"
    assert record.new_task_definition.endswith("dhanam-api:2")


async def test_rollback_uses_history_and_to_revision_is_validated(
    runtime: ActionRuntime, aws_world: DhanamWorld
) -> None:
    arns = aws_world.task_definition_arns
    # As if a deploy had moved production from revision 1 straight to revision 3.
    await runtime.history.record(
        DeployRecord(
            service="api",
            env="production",
            previous_task_definition=arns[("dhanam-api", 1)],
            new_task_definition=arns[("dhanam-api", 3)],
            previous_image="x",
            new_image="y",
            requested_by="U0ALICE",
            at=runtime.clock.now(),
        )
    )
    plan = await RollbackAction(service="api", env="production").plan(runtime)
    assert plan.summary.endswith("dhanam-api:3 → dhanam-api:1")
    assert any("deploy history" in f for f in plan.facts)

    with pytest.raises(ChatOpsError) as wrong:
        await RollbackAction(service="api", env="production", to_revision=9).plan(runtime)
    assert wrong.value.user_message == (
        "revision 9 is not an active revision of dhanam-api — active: 1, 2, 3"
    )
    with pytest.raises(ChatOpsError) as same:
        await RollbackAction(service="api", env="production", to_revision=3).plan(runtime)
    assert "running now" in same.value.user_message
    assert "1, 2" in same.value.user_message
    plan = await RollbackAction(service="api", env="production", to_revision=2).plan(runtime)
    assert plan.summary.endswith("dhanam-api:3 → dhanam-api:2")


async def test_rollback_refused_when_nothing_older(
    runtime: ActionRuntime, aws_world: DhanamWorld
) -> None:
    ecs = client(aws_world, "ecs")
    ecs.update_service(
        cluster=CLUSTER,
        service="dhanam-api",
        taskDefinition=aws_world.task_definition_arns[("dhanam-api", 1)],
    )
    with pytest.raises(ChatOpsError) as refused:
        await RollbackAction(service="api", env="production").plan(runtime)
    assert "nothing to roll back to" in refused.value.user_message


# -- scale ---------------------------------------------------------------------------------
async def test_scale_bounds_and_desired(runtime: ActionRuntime, aws_world: DhanamWorld) -> None:
    plan, result = await run(
        ScaleAction(service="api", env="production", min=3, max=15, desired=4), runtime
    )
    assert plan.summary == "Scale api in production: min 2 → 3, max 10 → 15, desired 2 → 4"
    assert plan.inputs == {
        "resource_id": RESOURCE,
        "min": 2,
        "max": 10,
        "new_min": 3,
        "new_max": 15,
        "desired": 2,
        "new_desired": 4,
    }
    assert result.ok
    assert result.summary == "api in production: min 2 → 3, max 10 → 15, desired 2 → 4"
    assert scalable(aws_world) == (3, 15)
    assert service(aws_world)["desiredCount"] == 4


async def test_scale_widening_does_not_depend_on_desired(runtime: ActionRuntime) -> None:
    plan = await ScaleAction(service="api", env="production", max=15).plan(runtime)
    assert "desired" not in plan.inputs
    assert [c.label for c in plan.changes] == ["max tasks"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"max": 500}, "--max 500 is above the limit of 50 tasks ([scale] max_tasks)"),
        ({"desired": 12}, "--desired 12 is above the autoscaling max of 10 — raise --max too"),
        ({"min": 3}, "--min 3 is above the desired count of 2 — raise --desired too"),
        ({"max": 1}, "--max 1 is below the autoscaling min of 2 — lower --min too"),
        ({"desired": 1}, "--desired 1 is below the autoscaling min of 2 — lower --min too"),
        ({"min": 11}, "--min 11 is above the autoscaling max of 10 — raise --max too"),
        ({"min": 2, "max": 10, "desired": 2}, "already min 2, max 10, desired 2"),
    ],
)
async def test_scale_refusals_change_nothing(
    runtime: ActionRuntime, aws_world: DhanamWorld, flags: dict[str, int], message: str
) -> None:
    with pytest.raises(ChatOpsError) as refused:
        await ScaleAction(service="api", env="production", **flags).plan(runtime)
    assert message in refused.value.user_message
    assert scalable(aws_world) == (2, 10)
    assert service(aws_world)["desiredCount"] == 2


async def test_scale_without_target_only_desired(
    runtime: ActionRuntime, aws_world: DhanamWorld
) -> None:
    client(aws_world, "application-autoscaling").deregister_scalable_target(
        ServiceNamespace="ecs", ResourceId=RESOURCE, ScalableDimension="ecs:service:DesiredCount"
    )
    with pytest.raises(ChatOpsError) as refused:
        await ScaleAction(service="api", env="production", max=5).plan(runtime)
    assert "only --desired" in refused.value.user_message
    plan, result = await run(ScaleAction(service="api", env="production", desired=3), runtime)
    assert plan.summary == "Scale api in production: desired 2 → 3"
    assert result.summary == "api in production: desired 2 → 3"
    assert service(aws_world)["desiredCount"] == 3


# -- db restore ----------------------------------------------------------------------------
def test_db_restore_shape() -> None:
    action = DbRestoreAction(env="production", to="latest")
    assert action.critical
    assert action.service is None
    assert action.lock_scope == "db:production"
    restored = DbRestoreAction.model_validate(
        DbRestoreAction(env="production", to=datetime(2026, 11, 26, 9, 30, tzinfo=UTC)).model_dump(
            mode="json"
        )
    )
    assert restored.to == datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
    assert DbRestoreAction.model_validate(action.model_dump(mode="json")).to == "latest"


async def test_db_restore_to_a_time_inside_the_window(
    runtime: ActionRuntime, aws_world: DhanamWorld
) -> None:
    source = await RdsGateway(runtime.aws.clients).describe_db_instance(REGION, "dhanam-production")
    assert source.earliest_restorable is not None
    moment = source.earliest_restorable
    action = DbRestoreAction(env="production", to=moment)
    plan, result = await run(action, runtime)
    target = restore_identifier("dhanam-production", moment)
    assert plan.inputs["target"] == target
    assert plan.summary == f"Restore database dhanam-production (production) to {when(moment)}"
    assert plan.warnings == [
        "The current database dhanam-production is left untouched; the cut-over is a separate step."
    ]
    assert result.ok
    assert result.summary == f"restored into {target} — AWS reports it available"  # moto
    assert target in db_ids(aws_world)
    with pytest.raises(ChatOpsError) as again:
        await action.plan(runtime)
    assert "already exists" in again.value.user_message


async def test_db_restore_refusals(runtime: ActionRuntime, aws_world: DhanamWorld) -> None:
    before = db_ids(aws_world)
    old = datetime(2025, 1, 1, tzinfo=UTC)
    with pytest.raises(ChatOpsError) as outside:
        await DbRestoreAction(env="production", to=old).plan(runtime)
    text = outside.value.user_message
    assert "2025-01-01 00:00 UTC is outside the restorable window of dhanam-production" in text
    assert text.count(" UTC") >= 3  # the time and both bounds
    future = datetime.now(UTC) + timedelta(days=1)
    with pytest.raises(ChatOpsError):
        await DbRestoreAction(env="production", to=future).plan(runtime)
    with pytest.raises(ChatOpsError) as staging:
        await DbRestoreAction(env="staging", to="latest").plan(runtime)
    assert "staging has no db_instance configured" in staging.value.user_message
    assert db_ids(aws_world) == before


async def test_db_restore_latest_is_named_after_the_request(
    runtime: ActionRuntime, aws_world: DhanamWorld
) -> None:
    asked = datetime(2026, 11, 26, 9, 30, 12, tzinfo=UTC)
    action = DbRestoreAction(env="production", to="latest", requested_at=asked)
    plan, result = await run(action, runtime)
    assert plan.inputs["restore_time"] == "latest"
    assert plan.inputs["target"] == "dhanam-production-restore-202611260930"
    assert result.ok
    assert "dhanam-production-restore-202611260930" in db_ids(aws_world)


async def test_rollback_fingerprint_ignores_the_task_count(
    runtime: ActionRuntime, aws_world: DhanamWorld
) -> None:
    action = RollbackAction(service="api", env="production")
    before = await action.plan(runtime)
    assert set(before.inputs) == {
        "task_definition",
        "images",
        "target_task_definition",
        "target_images",
        "circuit_breaker",
    }
    client(aws_world, "ecs").update_service(cluster=CLUSTER, service="dhanam-api", desiredCount=4)
    after = await action.plan(runtime)
    assert after.fingerprint == before.fingerprint


async def test_db_restore_fingerprint_ignores_the_moving_window_but_not_the_retention(
    runtime: ActionRuntime, aws_world: DhanamWorld
) -> None:
    rds = RdsGateway(runtime.aws.clients)
    first = await rds.describe_db_instance(REGION, "dhanam-production")
    action = DbRestoreAction(
        env="production", to="latest", requested_at=runtime.clock.now(), request_id="abcdef012345"
    )
    before = await action.plan(runtime)
    second = await rds.describe_db_instance(REGION, "dhanam-production")
    assert first.latest_restorable != second.latest_restorable  # moto: it advances on each read
    again = await action.plan(runtime)
    assert again.fingerprint == before.fingerprint
    assert before.inputs["source_arn"] == first.arn
    assert before.inputs["source_resource_id"] == first.resource_id

    client(aws_world, "rds").modify_db_instance(
        DBInstanceIdentifier="dhanam-production", BackupRetentionPeriod=14, ApplyImmediately=True
    )
    widened = await action.plan(runtime)
    assert widened.drift_from(before) == ["backup_retention_days: 7 → 14"]
