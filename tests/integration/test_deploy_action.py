"""DeployAction against moto (the Dhanam world) and the session's real redis-server."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from approvals.models import Change
from commands.operations.deploy import DeployAction
from commands.operations.runtime import ActionRuntime
from core.clock import ManualClock
from core.config import Config, parse_config
from core.errors import ChatOpsError
from integrations.aws.errors import AwsError
from integrations.aws.gateway import AWS_MANAGED_TASK_DEFINITION_FIELDS, AwsGateway
from integrations.deploy_history import DeployHistory
from integrations.redis_client import create_redis
from sandbox.aws_world import DhanamWorld, _manifest, set_alarm_state

REGION = "us-east-1"
CLUSTER = "dhanam-production"
ALARMS = ["dhanam-api-high-error-rate", "dhanam-api-high-response-time"]


def make_config(**api: Any) -> Config:
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
                },
                "staging": {"region": REGION, "cluster": "dhanam-staging", "approvals_required": 0},
            },
            "services": {
                "api": {"ecs_service": "dhanam-api", "container": "api", "alarms": ALARMS} | api,
                "web": {"ecs_service": "dhanam-web", "container": "web"},
            },
        }
    )


@pytest.fixture
async def runtime(aws_gateway: AwsGateway, redis_url: str) -> AsyncIterator[ActionRuntime]:
    redis = create_redis(redis_url)
    clock = ManualClock()
    yield ActionRuntime(
        config=make_config(), clock=clock, aws=aws_gateway, history=DeployHistory(redis, clock)
    )
    await redis.aclose()


def deploy(tag: str = "v1.3.0", service: str = "api", env: str = "production") -> DeployAction:
    return DeployAction(service=service, env=env, tag=tag)


def ecs(world: DhanamWorld) -> Any:
    return boto3.client("ecs", endpoint_url=world.endpoint_url, region_name=REGION)


def short(world: DhanamWorld, tag: str) -> str:
    return world.image_digests[("dhanam-api", tag)][: len("sha256:") + 12] + "…"


def test_action_shape_and_round_trip() -> None:
    action = deploy()
    assert action.service == "api"
    assert action.lock_scope == "api:production"
    assert action.title() == "Deploy api to production: v1.3.0"
    dumped = action.model_dump(mode="json")
    assert dumped["service"] == "api"
    assert "service_name" not in dumped
    assert DeployAction.model_validate(dumped) == action
    prepared = action.model_copy(update={"requested_by": "U1", "approved_by": ["U2"]})
    assert (prepared.requested_by, prepared.approved_by) == ("U1", ["U2"])
    with pytest.raises(ValueError, match="Extra inputs"):
        DeployAction.model_validate({**dumped, "bogus": 1})


async def test_plan_shows_the_change_with_digests(
    aws_world: DhanamWorld, runtime: ActionRuntime
) -> None:
    plan = await deploy().plan(runtime)
    assert plan.summary == "Deploy api to production: v1.2.0 → v1.3.0"
    assert plan.changes == [
        Change(label="task definition", before="dhanam-api:3", after="new revision of dhanam-api"),
        Change(label="image tag", before="v1.2.0", after="v1.3.0"),
        Change(label="digest", before=short(aws_world, "v1.2.0"), after=short(aws_world, "v1.3.0")),
        Change(label="desired count", before="2", after="2 (unchanged)"),
    ]
    repo = aws_world.repository_uris["dhanam-api"]
    assert plan.inputs == {
        "task_definition": aws_world.task_definition_arns[("dhanam-api", 3)],
        "images": {"api": aws_world.image("dhanam-api", "v1.2.0")},
        "container": "api",
        "image": f"{repo}@{aws_world.image_digests[('dhanam-api', 'v1.3.0')]}",
        "circuit_breaker": {"enable": True, "rollback": True},
    }
    assert "desired_count" not in plan.inputs  # shown on the card, not fingerprinted
    assert plan.facts == [
        "no alarms in ALARM (2 watched)",
        "circuit breaker on, rolls back on failure",
    ]
    assert plan.warnings == []


async def test_plan_fingerprint_is_stable_until_someone_deploys(
    aws_world: DhanamWorld, runtime: ActionRuntime
) -> None:
    first = await deploy().plan(runtime)
    second = await deploy().plan(runtime)
    assert first.fingerprint == second.fingerprint
    # Someone else deploys meanwhile (from the console, by family:revision as people type it).
    ecs(aws_world).update_service(
        cluster=CLUSTER, service="dhanam-api", taskDefinition="dhanam-api:2"
    )
    third = await deploy().plan(runtime)
    assert third.fingerprint != first.fingerprint
    assert third.summary == "Deploy api to production: v1.1.0 → v1.3.0"
    # The revision and (so) the image running now moved; nothing else did.
    images, revision = third.drift_from(first)
    assert images == (
        f"images: {{'api': '{aws_world.image('dhanam-api', 'v1.2.0')}'}} → "
        f"{{'api': '{aws_world.image('dhanam-api', 'v1.1.0')}'}}"
    )
    assert revision.startswith("task_definition: ")
    assert revision.endswith("dhanam-api:2")


async def test_plan_fingerprint_changes_when_the_tag_moves(
    aws_world: DhanamWorld, runtime: ActionRuntime
) -> None:
    before = await deploy().plan(runtime)
    manifest = _manifest("dhanam-api", "v1.3.0-rebuilt")
    digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
    ecr = boto3.client("ecr", endpoint_url=aws_world.endpoint_url, region_name=REGION)
    ecr.put_image(
        repositoryName="dhanam-api", imageManifest=manifest, imageTag="v1.3.0", imageDigest=digest
    )
    after = await deploy().plan(runtime)
    assert after.fingerprint != before.fingerprint
    assert after.inputs["image"].endswith(digest)


async def test_plan_warns_and_reports_alarms(
    aws_world: DhanamWorld, runtime: ActionRuntime
) -> None:
    set_alarm_state(aws_world.endpoint_url, REGION, ALARMS[0], "ALARM", "Threshold Crossed: 9 > 5")
    plan = await deploy("v1.2.0").plan(runtime)
    assert plan.warnings == ["v1.2.0 is already running (redeploys the same image)"]
    assert plan.facts[0].startswith(f"alarm {ALARMS[0]} is in ALARM since ")
    assert plan.facts[0].endswith(": Threshold Crossed: 9 > 5")


async def test_unknown_tag_is_refused(runtime: ActionRuntime) -> None:
    with pytest.raises(ChatOpsError) as raised:
        await deploy("v9.9.9").plan(runtime)
    assert raised.value.user_message == (
        'unknown tag "v9.9.9" for dhanam-api — known: v1.3.0, v1.2.0, v1.1.0, v1.0.0'
    )


async def test_unknown_service_or_env_in_config(runtime: ActionRuntime) -> None:
    with pytest.raises(ChatOpsError, match='unknown service "apii" — known: api, web'):
        await deploy(service="apii").plan(runtime)
    with pytest.raises(
        ChatOpsError, match='unknown environment "prod" — known: production, staging'
    ):
        await deploy(env="prod").plan(runtime)


async def test_service_missing_in_ecs_is_a_clear_aws_error(runtime: ActionRuntime) -> None:
    gone = ActionRuntime(
        config=make_config(ecs_service="dhanam-gone"),
        clock=runtime.clock,
        aws=runtime.aws,
        history=runtime.history,
    )
    with pytest.raises(AwsError) as raised:
        await deploy().plan(gone)
    assert raised.value.code == "ServiceNotFoundException"
    assert raised.value.user_message == (
        'ECS service "dhanam-gone" not found in cluster "dhanam-production" (us-east-1)'
    )


async def test_configured_container_missing(runtime: ActionRuntime) -> None:
    wrong = ActionRuntime(
        config=make_config(container="worker"),
        clock=runtime.clock,
        aws=runtime.aws,
        history=runtime.history,
    )
    with pytest.raises(ChatOpsError, match='no container "worker" — it has: api'):
        await deploy().plan(wrong)


async def test_execute_registers_a_revision_updates_the_service_and_records_history(
    aws_world: DhanamWorld, runtime: ActionRuntime
) -> None:
    action = deploy()
    plan = await action.plan(runtime)
    prepared = action.model_copy(
        update={"requested_by": "U0REQUESTER", "approved_by": ["U0APPROVER1"], "request_id": "r1"}
    )
    result = await prepared.execute(plan, runtime)
    repo = aws_world.repository_uris["dhanam-api"]
    image = f"{repo}@{aws_world.image_digests[('dhanam-api', 'v1.3.0')]}"
    new_arn = aws_world.task_definition_arns[("dhanam-api", 3)].replace(":3", ":4")
    assert result.ok
    assert (
        result.summary == f"dhanam-api now on dhanam-api:4 (v1.3.0, {short(aws_world, 'v1.3.0')})"
    )
    assert result.details["task_definition_arn"] == new_arn
    assert result.details["previous_task_definition_arn"] == plan.inputs["task_definition"]
    assert result.details["image"] == image

    state = await runtime.aws.describe_service(REGION, CLUSTER, "dhanam-api")
    assert state.task_definition_arn == new_arn
    old = await runtime.aws.describe_task_definition(REGION, "dhanam-api:3")
    new = await runtime.aws.describe_task_definition(REGION, new_arn)
    assert new["containerDefinitions"][0]["image"] == image
    strip = AWS_MANAGED_TASK_DEFINITION_FIELDS | {"containerDefinitions", "tags"}
    assert {k: v for k, v in old.items() if k not in strip} == {
        k: v for k, v in new.items() if k not in strip
    }
    assert [{**c, "image": ""} for c in old["containerDefinitions"]] == [
        {**c, "image": ""} for c in new["containerDefinitions"]
    ]
    assert new["tags"] == [
        {"key": "app", "value": "dhanam"},
        {"key": "image-tag", "value": "v1.3.0"},
        {"key": "dhanam:request", "value": "r1"},
    ]
    assert result.details["reused_revision"] is False
    assert result.details["service_updated"] is True

    record = await runtime.history.last("api", "production")
    assert record is not None
    assert (record.kind, record.tag, record.request_id) == ("deploy", "v1.3.0", "r1")
    assert (record.requested_by, record.approved_by) == ("U0REQUESTER", ["U0APPROVER1"])
    assert record.previous_task_definition == plan.inputs["task_definition"]
    assert record.new_task_definition == new_arn
    assert record.previous_image == aws_world.image("dhanam-api", "v1.2.0")
    assert record.new_image == image
    assert record.digest == aws_world.image_digests[("dhanam-api", "v1.3.0")]
    assert record.at == runtime.clock.now()

    # The next plan starts from the new revision, so an old approval no longer matches.
    again = await action.plan(runtime)
    assert again.fingerprint != plan.fingerprint
    assert again.changes[1] == Change(label="image tag", before="v1.3.0", after="v1.3.0")


async def test_access_denied_on_update_surfaces_and_records_nothing(
    aws_world: DhanamWorld, runtime: ActionRuntime
) -> None:
    def deny(**_: Any) -> None:
        raise ClientError(
            {
                "Error": {
                    "Code": "AccessDeniedException",
                    "Message": "User is not authorized to perform: ecs:UpdateService",
                }
            },
            "UpdateService",
        )

    runtime.aws.clients.client("ecs", REGION).meta.events.register(
        "before-call.ecs.UpdateService", deny
    )
    plan = await deploy().plan(runtime)
    with pytest.raises(AwsError) as raised:
        await deploy().execute(plan, runtime)
    assert raised.value.code == "AccessDeniedException"
    assert raised.value.user_message.startswith(
        "AWS refused UpdateService: AccessDeniedException — User is not"
    )
    assert await runtime.history.last("api", "production") is None
    state = await runtime.aws.describe_service(REGION, CLUSTER, "dhanam-api")
    assert state.task_definition_arn == aws_world.task_definition_arns[("dhanam-api", 3)]


async def test_history_outage_after_the_change_still_reports_success(
    aws_world: DhanamWorld, runtime: ActionRuntime
) -> None:
    dead = create_redis("redis://127.0.0.1:1/0", timeout=0.2)
    broken = ActionRuntime(
        config=runtime.config,
        clock=runtime.clock,
        aws=runtime.aws,
        history=DeployHistory(dead, runtime.clock),
    )
    plan = await deploy().plan(broken)
    result = await deploy().execute(plan, broken)
    await dead.aclose()
    assert result.ok
    assert result.details["history_error"].startswith("deploy history not recorded: ")
    state = await runtime.aws.describe_service(REGION, CLUSTER, "dhanam-api")
    assert state.task_definition_arn.endswith("dhanam-api:4")


async def test_plan_fingerprint_ignores_the_task_count(
    aws_world: DhanamWorld, runtime: ActionRuntime
) -> None:
    before = await deploy().plan(runtime)
    # Autoscaling moves the desired count by itself (UpdateService with only desiredCount).
    ecs(aws_world).update_service(cluster=CLUSTER, service="dhanam-api", desiredCount=5)
    after = await deploy().plan(runtime)
    assert after.fingerprint == before.fingerprint
    assert after.changes[-1] == Change(label="desired count", before="5", after="5 (unchanged)")
