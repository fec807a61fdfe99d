"""AWS failures through the gateway: refusals, throttles past the retries, no endpoint; and the
shared client configuration."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ClientError
from botocore.retries import standard

from integrations.aws.clients import AwsClients
from integrations.aws.errors import AwsError
from integrations.aws.gateway import AwsGateway
from sandbox.aws_world import DhanamWorld

REGION = "us-east-1"
CLUSTER = "dhanam-production"


def test_clients_are_cached_per_service_and_region(aws_world: DhanamWorld) -> None:
    clients = AwsClients(aws_world.endpoint_url, REGION)
    ecs = clients.client("ecs", REGION)
    assert clients.client("ecs") is ecs
    assert clients.client("ecs", REGION) is ecs
    assert clients.client("ecs", "us-west-2") is not ecs
    assert clients.client("ecs", "us-west-2").meta.region_name == "us-west-2"
    assert ecs.meta.endpoint_url == aws_world.endpoint_url
    # {"mode": "standard", "max_attempts": 5}, which botocore stores as attempts in total
    # (its max_attempts counts retries): one call plus five retries.
    retries = ecs.meta.config.retries  # type: ignore[attr-defined]
    assert retries == {"mode": "standard", "total_max_attempts": 6}
    assert clients.client("cloudwatch").meta.config.retries == retries  # type: ignore[attr-defined]


async def test_injected_access_denied_surfaces_with_code_and_message(
    aws_world: DhanamWorld, aws_gateway: AwsGateway
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

    aws_gateway.clients.client("ecs", REGION).meta.events.register(
        "before-call.ecs.UpdateService", deny
    )
    with pytest.raises(AwsError) as raised:
        await aws_gateway.update_service(REGION, CLUSTER, "dhanam-api", "dhanam-api:2")
    error = raised.value
    assert (error.operation, error.code) == ("UpdateService", "AccessDeniedException")
    assert error.message == "User is not authorized to perform: ecs:UpdateService"
    assert error.user_message == (
        "AWS refused UpdateService: AccessDeniedException — "
        "User is not authorized to perform: ecs:UpdateService"
    )
    state = await aws_gateway.describe_service(REGION, CLUSTER, "dhanam-api")
    assert state.task_definition_arn == aws_world.task_definition_arns[("dhanam-api", 3)]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


async def test_throttling_that_outlives_the_retries_surfaces(
    aws_gateway: AwsGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)
    attempts: list[str] = []

    def throttle(request: Any, **_: Any) -> Any:  # a response short-circuits the send
        attempts.append(request.url)
        body = b'{"__type":"ThrottlingException","message":"Rate exceeded"}'
        headers = {"x-amzn-RequestId": "throttled", "Content-Type": "application/x-amz-json-1.1"}
        return AWSResponse(request.url, 400, HTTPHeaders.from_dict(headers), _Raw(body))

    aws_gateway.clients.client("ecs", REGION).meta.events.register(
        "before-send.ecs.UpdateService", throttle
    )
    with pytest.raises(AwsError) as raised:
        await aws_gateway.update_service(REGION, CLUSTER, "dhanam-api", "dhanam-api:2")
    assert len(attempts) == 6  # the call and its five retries
    assert raised.value.code == "ThrottlingException"
    assert (
        raised.value.user_message
        == "AWS refused UpdateService: ThrottlingException — Rate exceeded"
    )


async def test_unreachable_endpoint_is_an_aws_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gateway = AwsGateway(AwsClients(f"http://127.0.0.1:{port}", REGION))
    with pytest.raises(AwsError) as raised:
        await gateway.describe_service(REGION, CLUSTER, "dhanam-api")
    assert raised.value.code == "EndpointConnectionError"
    assert raised.value.user_message.startswith("AWS unreachable for DescribeServices: ")
