"""AWS-side idempotency (issue 11, point 5): an Action executed a second time with the same
request id — a replay after a Redis failover — changes nothing twice. Against moto (the Dhanam
world) and the session's redis-server; AWS calls are counted with botocore `before-call` hooks
on the gateway's own clients."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from commands.operations.deploy import DeployAction
from commands.operations.restore import DbRestoreAction, restore_identifier, valid_db_identifier
from commands.operations.rollback import RollbackAction
from commands.operations.runtime import ActionRuntime
from commands.operations.scale import ScaleAction
from core.clock import ManualClock
from core.errors import ChatOpsError
from integrations.aws.errors import AwsError
from integrations.aws.gateway import AwsGateway
from integrations.deploy_history import DeployHistory
from integrations.redis_client import create_redis
from sandbox.aws_world import DhanamWorld
from tests.integration.test_aws_autoscaling_rds import make_config

REGION = "us-east-1"
CLUSTER = "dhanam-production"
RESOURCE = "service/dhanam-production/dhanam-api"
MUTATIONS = {
    "ecs": ("RegisterTaskDefinition", "UpdateService"),
    "application-autoscaling": ("RegisterScalableTarget",),
    "rds": ("RestoreDBInstanceToPointInTime",),
}


@pytest.fixture
async def runtime(aws_gateway: AwsGateway, redis_url: str) -> AsyncIterator[ActionRuntime]:
    redis = create_redis(redis_url)
    clock = ManualClock(datetime.now(UTC))
    yield ActionRuntime(
        config=make_config(), clock=clock, aws=aws_gateway, history=DeployHistory(redis, clock)
    )
    await redis.aclose()


@pytest.fixture
def calls(runtime: ActionRuntime) -> Counter[str]:
    """How many times the bot made each AWS mutation during the test."""
    counted: Counter[str] = Counter()
    for service, operations in MUTATIONS.items():
        events = runtime.aws.clients.client(service, REGION).meta.events
        for operation in operations:

            def count(operation: str = operation, **_: Any) -> None:
                counted[operation] += 1

            events.register(f"before-call.{service}.{operation}", count)
    return counted


def client(world: DhanamWorld, name: str) -> Any:
    return boto3.client(name, endpoint_url=world.endpoint_url, region_name=REGION)  # type: ignore[call-overload]


def revisions(world: DhanamWorld) -> list[str]:
    listed = client(world, "ecs").list_task_definitions(familyPrefix="dhanam-api")
    return [arn.rpartition("/")[2] for arn in listed["taskDefinitionArns"]]


def running(world: DhanamWorld) -> str:
    found = client(world, "ecs").describe_services(cluster=CLUSTER, services=["dhanam-api"])
    return str(found["services"][0]["taskDefinition"]).rpartition("/")[2]


def request_tag(world: DhanamWorld, revision: str) -> str | None:
    described = client(world, "ecs").describe_task_definition(
        taskDefinition=revision, include=["TAGS"]
    )
    return next((t["value"] for t in described["tags"] if t["key"] == "dhanam:request"), None)


def db_ids(world: DhanamWorld) -> list[str]:
    found = client(world, "rds").describe_db_instances()["DBInstances"]
    return sorted(d["DBInstanceIdentifier"] for d in found)


# -- deploy --------------------------------------------------------------------------------
async def test_deploy_executed_twice_registers_one_revision_and_updates_once(
    runtime: ActionRuntime, aws_world: DhanamWorld, calls: Counter[str]
) -> None:
    action = DeployAction(service="api", env="production", tag="v1.3.0", request_id="a1b2c3d4e5f6")
    plan = await action.plan(runtime)
    first = await action.execute(plan, runtime)
    second = await action.execute(plan, runtime)

    assert revisions(aws_world) == ["dhanam-api:1", "dhanam-api:2", "dhanam-api:3", "dhanam-api:4"]
    assert request_tag(aws_world, "dhanam-api:4") == "a1b2c3d4e5f6"
    assert calls == {"RegisterTaskDefinition": 1, "UpdateService": 1}
    assert running(aws_world) == "dhanam-api:4"
    assert first.details["task_definition_arn"] == second.details["task_definition_arn"]
    assert (second.details["reused_revision"], second.details["service_updated"]) == (True, False)
    assert second.ok
    assert second.summary.startswith("dhanam-api already on dhanam-api:4 (v1.3.0, sha256:")
    assert second.summary.endswith("— nothing to change")
    history = await runtime.history.recent("api", "production", 10)
    assert [(r.kind, r.request_id) for r in history] == [("deploy", "a1b2c3d4e5f6")]


async def test_deploy_replayed_after_its_revision_was_registered_never_updates_twice(
    runtime: ActionRuntime, aws_world: DhanamWorld, calls: Counter[str]
) -> None:
    """The first attempt registered its revision, then its update-service may or may not have
    reached ECS (here AWS refused it; it could as well have timed out after being carried out
    and been rolled back by the circuit breaker). The replay cannot tell, so it neither
    registers another revision nor sends update-service again: at most once."""
    events = runtime.aws.clients.client("ecs", REGION).meta.events

    def refuse(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ServerException", "Message": "replica lost"}}, "UpdateService"
        )

    events.register("before-call.ecs.UpdateService", refuse, unique_id="refuse-once")
    action = DeployAction(service="api", env="production", tag="v1.3.0", request_id="feedbeef0001")
    plan = await action.plan(runtime)
    with pytest.raises(AwsError):
        await action.execute(plan, runtime)
    assert revisions(aws_world)[-1] == "dhanam-api:4"
    assert running(aws_world) == "dhanam-api:3"
    events.unregister("before-call.ecs.UpdateService", unique_id="refuse-once")
    updates = calls["UpdateService"]

    replan = await action.plan(runtime)
    assert replan.fingerprint == plan.fingerprint  # the service did not move: same plan
    with pytest.raises(ChatOpsError) as refused:
        await action.execute(replan, runtime)
    assert "earlier attempt of this request registered dhanam-api:4" in refused.value.user_message
    assert "not sent again" in refused.value.user_message
    assert len(revisions(aws_world)) == 4
    assert running(aws_world) == "dhanam-api:3"
    assert calls["RegisterTaskDefinition"] == 1
    assert calls["UpdateService"] == updates


async def test_deploy_with_another_request_id_registers_a_new_revision(
    runtime: ActionRuntime, aws_world: DhanamWorld, calls: Counter[str]
) -> None:
    first = DeployAction(service="api", env="production", tag="v1.3.0", request_id="aaaaaa000001")
    await first.execute(await first.plan(runtime), runtime)
    other = DeployAction(service="api", env="production", tag="v1.3.0", request_id="bbbbbb000002")
    result = await other.execute(await other.plan(runtime), runtime)

    assert result.details["reused_revision"] is False
    assert revisions(aws_world)[-2:] == ["dhanam-api:4", "dhanam-api:5"]
    assert request_tag(aws_world, "dhanam-api:4") == "aaaaaa000001"
    # The new revision copies the tags of the one it replaces, but names only its own request.
    assert request_tag(aws_world, "dhanam-api:5") == "bbbbbb000002"
    assert running(aws_world) == "dhanam-api:5"
    assert calls == {"RegisterTaskDefinition": 2, "UpdateService": 2}


async def test_deploy_without_a_request_id_does_not_copy_an_old_request_tag(
    runtime: ActionRuntime, aws_world: DhanamWorld
) -> None:
    tagged = DeployAction(service="api", env="production", tag="v1.3.0", request_id="cccccc000003")
    await tagged.execute(await tagged.plan(runtime), runtime)
    untagged = DeployAction(service="api", env="production", tag="v1.1.0")
    await untagged.execute(await untagged.plan(runtime), runtime)
    assert running(aws_world) == "dhanam-api:5"
    assert request_tag(aws_world, "dhanam-api:5") is None


# -- rollback ------------------------------------------------------------------------------
async def test_rollback_executed_twice_updates_the_service_once(
    runtime: ActionRuntime, aws_world: DhanamWorld, calls: Counter[str]
) -> None:
    action = RollbackAction(service="api", env="production", request_id="dddddd000004")
    plan = await action.plan(runtime)
    first = await action.execute(plan, runtime)
    second = await action.execute(plan, runtime)

    assert first.summary == "dhanam-api rolled back to dhanam-api:2 (dhanam-api:v1.1.0)"
    assert second.ok
    assert second.summary == (
        "dhanam-api already on dhanam-api:2 (dhanam-api:v1.1.0) — nothing to change"
    )
    assert second.details["service_updated"] is False
    assert calls == {"UpdateService": 1}
    assert running(aws_world) == "dhanam-api:2"
    history = await runtime.history.recent("api", "production", 10)
    assert [(r.kind, r.request_id) for r in history] == [("rollback", "dddddd000004")]


# -- scale ---------------------------------------------------------------------------------
async def test_scale_executed_twice_changes_once(
    runtime: ActionRuntime, aws_world: DhanamWorld, calls: Counter[str]
) -> None:
    action = ScaleAction(
        service="api", env="production", min=3, max=15, desired=4, request_id="eeeeee000005"
    )
    plan = await action.plan(runtime)
    first = await action.execute(plan, runtime)
    second = await action.execute(plan, runtime)

    assert first.summary == "api in production: min 2 → 3, max 10 → 15, desired 2 → 4"
    assert second.ok
    assert second.summary == (
        "api in production: already min 3, max 15, desired 4 — nothing to change"
    )
    assert calls == {"RegisterScalableTarget": 1, "UpdateService": 1}
    target = client(aws_world, "application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[RESOURCE]
    )["ScalableTargets"][0]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (3, 15)


async def test_scale_skips_only_what_is_already_there(
    runtime: ActionRuntime, aws_world: DhanamWorld, calls: Counter[str]
) -> None:
    """Bounds already set by an earlier attempt, desired count not yet: only the count moves."""
    action = ScaleAction(service="api", env="production", max=15, desired=4)
    plan = await action.plan(runtime)
    client(aws_world, "application-autoscaling").register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=RESOURCE,
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=2,
        MaxCapacity=15,
    )
    result = await action.execute(plan, runtime)
    assert result.summary == "api in production: desired 2 → 4 (already max 15)"
    assert calls == {"UpdateService": 1}


# -- db restore ----------------------------------------------------------------------------
async def test_restore_executed_twice_creates_one_instance(
    runtime: ActionRuntime, aws_world: DhanamWorld, calls: Counter[str]
) -> None:
    asked = datetime(2026, 11, 26, 9, 30, 12, tzinfo=UTC)
    action = DbRestoreAction(
        env="production", to="latest", requested_at=asked, request_id="0a1b2c3d4e5f"
    )
    before = db_ids(aws_world)
    plan = await action.plan(runtime)
    target = "dhanam-production-restore-202611260930-0a1b2c"
    assert plan.inputs["target"] == target  # named at submit: the plan's name is the executed one
    first = await action.execute(plan, runtime)
    second = await action.execute(plan, runtime)

    assert db_ids(aws_world) == sorted([*before, target])
    assert calls == {"RestoreDBInstanceToPointInTime": 1}
    assert second.ok
    assert second.details["adopted"] is True
    status = first.details["status"]  # moto makes a restored instance available at once
    assert status == "available"
    # The sentence says what the status means: available is restored, not "restoring".
    assert first.summary == f"restored into {target} — AWS reports it available"
    assert second.summary == (
        f"already restored into {target} by an earlier attempt of this request — AWS reports "
        "it available; nothing to change"
    )
    tags = client(aws_world, "rds").describe_db_instances(DBInstanceIdentifier=target)[
        "DBInstances"
    ][0]["TagList"]
    assert {"Key": "dhanam:request", "Value": "0a1b2c3d4e5f"} in tags

    # The engine re-plans before a replayed execution: the instance this request started is
    # adopted, not a reason to refuse, and the fingerprint is the approved one.
    replan = await action.plan(runtime)
    assert replan.fingerprint == plan.fingerprint
    assert any("adopted" in fact for fact in replan.facts)


async def test_restore_refuses_an_instance_of_that_name_it_did_not_start(
    runtime: ActionRuntime, aws_world: DhanamWorld, calls: Counter[str]
) -> None:
    asked = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
    action = DbRestoreAction(
        env="production", to="latest", requested_at=asked, request_id="123456abcdef"
    )
    plan = await action.plan(runtime)
    other = DbRestoreAction(
        env="production", to="latest", requested_at=asked, request_id="999999000000"
    )
    # Someone else (another request) takes the name first, e.g. by hand.
    source = client(aws_world, "rds")
    source.restore_db_instance_to_point_in_time(
        SourceDBInstanceIdentifier="dhanam-production",
        TargetDBInstanceIdentifier=str(plan.inputs["target"]),
        UseLatestRestorableTime=True,
        Tags=[{"Key": "dhanam:request", "Value": str(other.request_id)}],
    )
    before = db_ids(aws_world)
    with pytest.raises(ChatOpsError) as refused:
        await action.execute(plan, runtime)
    assert refused.value.user_message == (
        f"{plan.inputs['target']} already exists (AWS status: available) and was not started by "
        "this request. Nothing was changed."
    )
    with pytest.raises(ChatOpsError, match="already exists"):
        await action.plan(runtime)
    assert db_ids(aws_world) == before
    assert calls == {}


@pytest.mark.parametrize(
    ("source", "request_id"),
    [
        ("dhanam-production", "0a1b2c3d4e5f"),
        ("a" * 40 + "-" + "b" * 30, "0a1b2c3d4e5f"),
        ("a" * 44 + "-tail", "ABCDEF123456"),  # shortened right after a hyphen
        ("Dhanam-Prod", "-_-x1y2z3"),  # upper case, punctuation in the id
        ("dhanam-production", None),
    ],
)
def test_restore_identifier_is_a_valid_rds_identifier(source: str, request_id: str | None) -> None:
    moment = datetime(2026, 11, 26, 9, 30, 45, tzinfo=UTC)
    name = restore_identifier(source, moment, request_id)
    assert valid_db_identifier(name), name
    assert "-restore-202611260930" in name
    if request_id is not None:
        key = "".join(c for c in request_id.lower() if c.isalnum())[:6]
        assert name.endswith(f"-202611260930-{key}")


def test_valid_db_identifier_rules() -> None:
    assert valid_db_identifier("dhanam-production-restore-202611260930-0a1b2c")
    assert not valid_db_identifier("1dhanam")  # starts with a digit
    assert not valid_db_identifier("dhanam--x")  # two hyphens in a row
    assert not valid_db_identifier("dhanam-")  # trailing hyphen
    assert not valid_db_identifier("dhanam_x")  # underscore
    assert not valid_db_identifier("a" * 64)  # too long
    assert valid_db_identifier("a" * 63)
