"""AwsGateway against moto in server mode, seeded with the Dhanam world."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from integrations.aws.errors import AwsError
from integrations.aws.gateway import AWS_MANAGED_TASK_DEFINITION_FIELDS, AwsGateway
from sandbox.aws_world import DhanamWorld, set_alarm_state

REGION = "us-east-1"
CLUSTER = "dhanam-production"


def boto(world: DhanamWorld, name: str) -> Any:
    return boto3.client(name, endpoint_url=world.endpoint_url, region_name=REGION)  # type: ignore[call-overload]


def comparable(task_definition: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in task_definition.items() if k not in AWS_MANAGED_TASK_DEFINITION_FIELDS}


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Paths where two JSON-like values differ, compared field by field."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            diff
            for key in sorted(set(old) | set(new))
            for diff in differences(old.get(key), new.get(key), f"{path}.{key}")
        ]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            d
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            for d in differences(a, b, f"{path}[{i}]")
        ]
    return [] if old == new else [path]


async def test_describe_service_on_the_seeded_world(
    aws_world: DhanamWorld, aws_gateway: AwsGateway
) -> None:
    state = await aws_gateway.describe_service(REGION, CLUSTER, "dhanam-api")
    assert state.name == "dhanam-api"
    assert state.task_definition_arn == aws_world.task_definition_arns[("dhanam-api", 3)]
    assert (state.desired, state.running, state.pending) == (2, 2, 0)
    assert state.circuit_breaker_enabled
    assert state.circuit_breaker_rollback
    assert len(state.deployments) == 1
    primary = state.primary
    assert primary is not None
    assert primary.status == "PRIMARY"
    assert primary.rollout_state == "COMPLETED"
    assert primary.task_definition == state.task_definition_arn
    assert (primary.running, primary.desired, primary.pending, primary.failed_tasks) == (2, 2, 0, 0)
    assert not state.rolling_out
    assert state.events == ()


async def test_unknown_service_is_a_clear_aws_error(aws_gateway: AwsGateway) -> None:
    with pytest.raises(AwsError) as raised:
        await aws_gateway.describe_service(REGION, CLUSTER, "dhanam-gone")
    assert raised.value.code == "ServiceNotFoundException"
    assert raised.value.user_message == (
        'ECS service "dhanam-gone" not found in cluster "dhanam-production" (us-east-1)'
    )


async def test_unknown_cluster_reads_as_aws_refusal(aws_gateway: AwsGateway) -> None:
    with pytest.raises(AwsError) as raised:
        await aws_gateway.describe_service(REGION, "nope", "dhanam-api")
    assert raised.value.code == "ClusterNotFoundException"
    assert raised.value.operation == "DescribeServices"
    assert raised.value.user_message.startswith(
        "AWS refused DescribeServices: ClusterNotFoundException — "
    )


async def test_describe_task_definition_includes_tags(
    aws_world: DhanamWorld, aws_gateway: AwsGateway
) -> None:
    td = await aws_gateway.describe_task_definition(REGION, "dhanam-api:2")
    assert td["taskDefinitionArn"] == aws_world.task_definition_arns[("dhanam-api", 2)]
    assert td["containerDefinitions"][0]["image"] == aws_world.image("dhanam-api", "v1.1.0")
    assert {"key": "image-tag", "value": "v1.1.0"} in td["tags"]


async def test_resolve_known_tag_in_ecr(aws_world: DhanamWorld, aws_gateway: AwsGateway) -> None:
    running = aws_world.image("dhanam-api", "v1.2.0")
    resolved = await aws_gateway.resolve_image(REGION, running, "v1.3.0")
    repo = aws_world.repository_uris["dhanam-api"]
    digest = aws_world.image_digests[("dhanam-api", "v1.3.0")]
    assert resolved.repository_uri == repo
    assert resolved.tag == "v1.3.0"
    assert resolved.digest == digest
    assert resolved.image_with_tag == f"{repo}:v1.3.0"
    assert resolved.image_pinned == f"{repo}@{digest}"
    # A running image that is already pinned by digest resolves the same way.
    again = await aws_gateway.resolve_image(REGION, resolved.image_pinned, "v1.3.0")
    assert again == resolved


async def test_unknown_tag_lists_the_known_ones(
    aws_gateway: AwsGateway, aws_world: DhanamWorld
) -> None:
    with pytest.raises(AwsError) as raised:
        await aws_gateway.resolve_image(REGION, aws_world.image("dhanam-api", "v1.2.0"), "v9.9.9")
    assert raised.value.code == "ImageNotFoundException"
    assert raised.value.user_message == (
        'unknown tag "v9.9.9" for dhanam-api — known: v1.3.0, v1.2.0, v1.1.0, v1.0.0'
    )


async def test_non_ecr_image_is_pinned_by_tag(aws_gateway: AwsGateway) -> None:
    resolved = await aws_gateway.resolve_image(
        REGION, "registry.example.com:5000/team/app:1.0", "1.1"
    )
    assert resolved.digest is None
    assert resolved.repository_uri == "registry.example.com:5000/team/app"
    assert (
        resolved.image_pinned == resolved.image_with_tag == "registry.example.com:5000/team/app:1.1"
    )


async def test_invalid_tag_is_refused(aws_gateway: AwsGateway, aws_world: DhanamWorld) -> None:
    with pytest.raises(AwsError, match="invalid image tag"):
        await aws_gateway.resolve_image(REGION, aws_world.image("dhanam-api", "v1.2.0"), "v1 ;rm")


async def test_new_revision_differs_from_the_old_only_in_the_image(
    aws_world: DhanamWorld, aws_gateway: AwsGateway
) -> None:
    old = await aws_gateway.describe_task_definition(REGION, "dhanam-api:3")
    image = (
        aws_world.repository_uris["dhanam-api"]
        + "@"
        + aws_world.image_digests[("dhanam-api", "v1.3.0")]
    )
    arn = await aws_gateway.register_task_definition_like(REGION, old, None, "api", image)
    assert arn.endswith("task-definition/dhanam-api:4")
    new = await aws_gateway.describe_task_definition(REGION, arn)
    assert new["revision"] == 4
    assert differences(comparable(old), comparable(new)) == [".containerDefinitions[0].image"]
    assert new["containerDefinitions"][0]["image"] == image
    assert new["tags"] == old["tags"]


async def test_every_accepted_field_is_copied(
    aws_world: DhanamWorld, aws_gateway: AwsGateway
) -> None:
    ecs = boto(aws_world, "ecs")
    rich = ecs.register_task_definition(
        family="dhanam-rich",
        containerDefinitions=[
            {"name": "app", "image": "nginx:1.25", "memory": 128, "essential": True},
            {"name": "envoy", "image": "envoyproxy/envoy:v1.30", "memory": 64},
        ],
        volumes=[{"name": "data", "host": {"sourcePath": "/data"}}],
        placementConstraints=[
            {"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t3.*"}
        ],
        requiresCompatibilities=["EC2"],
        networkMode="bridge",
        cpu="256",
        memory="512",
        pidMode="task",
        ipcMode="task",
        proxyConfiguration={
            "type": "APPMESH",
            "containerName": "envoy",
            "properties": [{"name": "AppPorts", "value": "80"}],
        },
        inferenceAccelerators=[{"deviceName": "d1", "deviceType": "eia2.medium"}],
        ephemeralStorage={"sizeInGiB": 30},
        runtimePlatform={"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
        taskRoleArn="arn:aws:iam::123456789012:role/dhanam-api-task",
        executionRoleArn="arn:aws:iam::123456789012:role/dhanam-ecs-execution",
        tags=[{"key": "team", "value": "platform"}],
    )["taskDefinition"]
    source = await aws_gateway.describe_task_definition(REGION, rich["taskDefinitionArn"])
    source["enableFaultInjection"] = True  # moto drops it; AWS would return it
    sent: dict[str, Any] = {}

    def capture(params: dict[str, Any], **_: Any) -> None:
        sent.update(params)

    client = aws_gateway.clients.client("ecs", REGION)
    client.meta.events.register("provide-client-params.ecs.RegisterTaskDefinition", capture)
    arn = await aws_gateway.register_task_definition_like(REGION, source, None, "app", "nginx:1.27")
    accepted = aws_gateway.register_fields(REGION)
    assert set(sent) == {k for k in source if k in accepted and source[k] not in (None, [])} | {
        "volumes",
        "placementConstraints",
    }
    assert {
        "pidMode",
        "ipcMode",
        "proxyConfiguration",
        "inferenceAccelerators",
        "ephemeralStorage",
        "runtimePlatform",
        "enableFaultInjection",
        "tags",
    } <= set(sent)
    new = await aws_gateway.describe_task_definition(REGION, arn)
    assert differences(comparable(source), comparable(new)) == [
        ".containerDefinitions[0].image",
        ".enableFaultInjection",
    ]


async def test_missing_container_is_refused_naming_the_present_ones(
    aws_gateway: AwsGateway,
) -> None:
    source = await aws_gateway.describe_task_definition(REGION, "dhanam-api:3")
    with pytest.raises(AwsError) as raised:
        await aws_gateway.register_task_definition_like(REGION, source, None, "worker", "x:1")
    assert (
        raised.value.user_message
        == 'task definition dhanam-api:3 has no container "worker" — it has: api'
    )
    assert await aws_gateway.list_task_definition_revisions(REGION, "dhanam-api") == [1, 2, 3]


async def test_update_service_and_revisions(
    aws_world: DhanamWorld, aws_gateway: AwsGateway
) -> None:
    ecs = boto(aws_world, "ecs")
    ecs.register_task_definition(
        family="dhanam-api-worker",
        containerDefinitions=[{"name": "w", "image": "w:1", "memory": 64}],
    )
    ecs.deregister_task_definition(taskDefinition="dhanam-api:1")
    assert await aws_gateway.list_task_definition_revisions(REGION, "dhanam-api") == [2, 3]
    target = aws_world.task_definition_arns[("dhanam-api", 2)]
    state = await aws_gateway.update_service(REGION, CLUSTER, "dhanam-api", target, desired=3)
    assert state.task_definition_arn == target
    assert state.desired == 3
    described = await aws_gateway.describe_service(REGION, CLUSTER, "dhanam-api")
    assert (described.task_definition_arn, described.desired) == (target, 3)


async def test_alarms_in_alarm(aws_world: DhanamWorld, aws_gateway: AwsGateway) -> None:
    names = list(aws_world.alarm_names)
    assert await aws_gateway.alarms_in_alarm(REGION, names) == []
    assert await aws_gateway.alarms_in_alarm(REGION, []) == []
    set_alarm_state(aws_world.endpoint_url, REGION, names[1], "ALARM", "Threshold Crossed: 3 > 2")
    alarms = await aws_gateway.alarms_in_alarm(REGION, [*names, "no-such-alarm"])
    assert [(a.name, a.state, a.reason) for a in alarms] == [
        (names[1], "ALARM", "Threshold Crossed: 3 > 2")
    ]
    assert alarms[0].updated is not None
