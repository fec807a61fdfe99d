"""Fuzz (hypothesis): hostile requests to every route of the running bot, signed and unsigned.

Never a 5xx (Redis is up); every error is the contract's JSON; a signed Slack request gets 200
(handled, or acknowledged with nothing done when no listener takes it), 400 when malformed or
413 when too big — never Bolt's 404; an unverified request gets a 4xx and changes nothing — no
Slack write in the emulator, no AWS mutation in moto. One bot per test function (not per
example); tests/fuzz_inputs.py makes the requests. bench/fuzz.py runs the same strategies
100,000 times per route.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.aws_world import DhanamWorld
from sandbox.slack_emulator import RESPONSE_URL_METHOD, WRITE_METHODS
from sandbox.world import SANDBOX_PD_WEBHOOK_SECRET, SANDBOX_SIGNING_SECRET, SandboxWorld
from tests.fuzz_inputs import (
    Case,
    Secrets,
    get_cases,
    pagerduty_cases,
    slack_cases,
    sns_signed_cases,
    sns_unsigned_cases,
)
from tests.scenario.alarm_support import TOPIC

SECRETS = Secrets(slack=SANDBOX_SIGNING_SECRET, pagerduty=SANDBOX_PD_WEBHOOK_SECRET)
UNVERIFIED_STATUSES = {"/slack/events": {400, 401, 413}}
REFUSED = {400, 403, 413}
# Slack retries an event answered non-2xx and flags an interaction so: no 404 for a signed one.
SIGNED_SLACK_STATUSES = {200, 400, 413}


def fuzz(examples: int) -> Any:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def send(session: aiohttp.ClientSession, world: SandboxWorld, case: Case) -> int:
    """POST the case; check what every answer must be; the status."""
    async with session.post(world.bot_url + case.route, data=case.body, headers=case.headers) as r:
        status = r.status
        text = await r.text()
        content_type = r.content_type
    assert status < 500, (status, text, case)
    if status >= 400:
        assert content_type == "application/json", (status, text, case)
        assert "error" in json.loads(text), (status, text, case)
    if not case.verified:
        assert status in UNVERIFIED_STATUSES.get(case.route, REFUSED), (status, text, case)
    return status


def slack_writes(world: SandboxWorld) -> list[str]:
    writing = WRITE_METHODS | {RESPONSE_URL_METHOD}
    return [
        c.method
        for c in world.slack.calls
        if c.method in writing or c.method.startswith(("chat.", "views.", "conversations.create"))
    ]


def aws_state(world: DhanamWorld) -> dict[str, Any]:
    """What a mutation would change: services, task definitions, scaling, databases."""
    options: dict[str, Any] = {"endpoint_url": world.endpoint_url, "region_name": world.region}
    ecs = boto3.client("ecs", **options)
    state: dict[str, Any] = {
        "task_definitions": sorted(ecs.list_task_definitions()["taskDefinitionArns"]),
        "db": sorted(
            i["DBInstanceIdentifier"]
            for i in boto3.client("rds", **options).describe_db_instances()["DBInstances"]
        ),
        "scaling": boto3.client("application-autoscaling", **options).describe_scalable_targets(
            ServiceNamespace="ecs"
        )["ScalableTargets"],
    }
    for cluster in world.cluster_names:
        try:
            arns = ecs.list_services(cluster=cluster)["serviceArns"]
        except ClientError:
            continue
        if arns:
            services = ecs.describe_services(cluster=cluster, services=arns)["services"]
            state[cluster] = sorted(
                (s["serviceName"], s["taskDefinition"], s["desiredCount"]) for s in services
            )
    return state


@pytest.fixture
async def aws_unchanged(aws_bot: SandboxWorld) -> AsyncIterator[None]:
    """Fails the test (at teardown, after every example) if AWS changed while it ran."""
    assert aws_bot.world is not None
    before = await asyncio.to_thread(aws_state, aws_bot.world)
    yield
    assert await asyncio.to_thread(aws_state, aws_bot.world) == before


STATUSES: Counter[tuple[str, str, int]] = Counter()


# -- Slack -------------------------------------------------------------------------------------
@fuzz(300)
@given(case=slack_cases(SECRETS, signed=False))
async def test_slack_unsigned_changes_nothing(
    aws_bot: SandboxWorld, aws_unchanged: None, http: aiohttp.ClientSession, case: Case
) -> None:
    STATUSES["slack", "unsigned", await send(http, aws_bot, case)] += 1
    assert slack_writes(aws_bot) == []


@fuzz(300)
@given(case=slack_cases(SECRETS, signed=True))
async def test_slack_signed_is_never_5xx(
    world: SandboxWorld, http: aiohttp.ClientSession, case: Case
) -> None:
    status = await send(http, world, case)
    assert status in SIGNED_SLACK_STATUSES, (status, case)
    STATUSES["slack", "signed", status] += 1


# -- SNS ---------------------------------------------------------------------------------------
@fuzz(200)
@given(case=sns_unsigned_cases())
async def test_sns_unsigned_changes_nothing(
    world: SandboxWorld, http: aiohttp.ClientSession, case: Case
) -> None:
    STATUSES["sns", "unsigned", await send(http, world, case)] += 1
    assert slack_writes(world) == []


@fuzz(200)
@given(data=st.data())
async def test_sns_signed_is_never_5xx(
    world: SandboxWorld, http: aiohttp.ClientSession, data: st.DataObject
) -> None:
    case = data.draw(sns_signed_cases(world.sns, TOPIC))
    STATUSES["sns", case.kind, await send(http, world, case)] += 1


# -- PagerDuty ---------------------------------------------------------------------------------
@fuzz(200)
@given(case=pagerduty_cases(SECRETS, signed=False))
async def test_pagerduty_unsigned_changes_nothing(
    world: SandboxWorld, http: aiohttp.ClientSession, case: Case
) -> None:
    STATUSES["pagerduty", "unsigned", await send(http, world, case)] += 1
    assert slack_writes(world) == []


@fuzz(200)
@given(case=pagerduty_cases(SECRETS, signed=True))
async def test_pagerduty_signed_is_never_5xx(
    world: SandboxWorld, http: aiohttp.ClientSession, case: Case
) -> None:
    STATUSES["pagerduty", "signed", await send(http, world, case)] += 1


# -- health and metrics --------------------------------------------------------------------------
@fuzz(100)
@given(request=get_cases())
async def test_health_and_metrics_answer(
    world: SandboxWorld, http: aiohttp.ClientSession, request: tuple[str, str, dict[str, str]]
) -> None:
    path, method, headers = request
    async with http.request(method, world.bot_url + path, headers=headers) as r:
        assert r.status < 500 or (r.status == 503 and path.startswith("/health")), r.status
        if r.status >= 400 and method != "HEAD":
            assert "error" in await r.json()
