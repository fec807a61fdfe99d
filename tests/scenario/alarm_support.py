"""Helpers for the alarm scenarios: signed CloudWatch notifications POSTed to /webhooks/sns."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.wiring import Overrides
from commands.alarms.store import AlarmSettings
from core.settings import LogFormat
from integrations.sns import Fetch
from sandbox.slack_emulator_models import EmuMessage
from sandbox.sns_signer import cloudwatch_alarm_message
from sandbox.world import Reply, SandboxWorld

TOPIC = "arn:aws:sns:us-east-1:123456789012:dhanam-alarms"
T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def alarm_definition(name: str) -> dict[str, Any]:
    return {
        "AlarmName": name,
        "AlarmDescription": f"{name} (test)",
        "MetricName": "HTTPCode_Target_5XX_Count",
        "Namespace": "AWS/ApplicationELB",
        "Statistic": "Sum",
        "Dimensions": [{"Name": "LoadBalancer", "Value": "app/dhanam-production/abc"}],
        "Period": 300,
        "EvaluationPeriods": 2,
        "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": 5.0,
    }


def notification(
    world: SandboxWorld, name: str, state: str, at: datetime, old: str = "OK"
) -> dict[str, Any]:
    message = cloudwatch_alarm_message(
        alarm_definition(name),
        state,
        old,
        f"Threshold Crossed: test moved {name} to {state}",
        "us-east-1",
        "123456789012",
        now=at,
    )
    subject = f'{state}: "{name}" in US East (N. Virginia)'
    return world.sns.notification(TOPIC, message, subject)


async def deliver(world: SandboxWorld, body: dict[str, Any] | str, replica: int = 0) -> Reply:
    raw = body if isinstance(body, str) else json.dumps(body)
    headers = {"Content-Type": "text/plain; charset=UTF-8"}
    return await world.post("/webhooks/sns", raw, headers, replica=replica)


async def fire(
    world: SandboxWorld, name: str, state: str, seconds: float = 0, old: str = "OK"
) -> Reply:
    return await deliver(
        world, notification(world, name, state, T0 + timedelta(seconds=seconds), old)
    )


FAST = AlarmSettings(writes_per_second=50.0)


@asynccontextmanager
async def alarm_world(
    redis_url: str,
    settings: AlarmSettings = FAST,
    *,
    config_path: Path | None = None,
    sns_fetch: Fetch | None = None,
    replicas: int = 1,
    redis_cluster: bool = False,
) -> AsyncIterator[SandboxWorld]:
    """The bot without AWS, its alarm settings replaced (fast writes unless told otherwise)."""
    extra: dict[str, Any] = {"config_path": config_path} if config_path else {}
    world = SandboxWorld(
        redis_url=redis_url,
        redis_cluster=redis_cluster,
        aws=False,
        log_format=LogFormat.JSON,
        replicas=replicas,
        overrides=Overrides(alarms=settings, sns_fetch=sns_fetch),
        **extra,
    )
    await world.start()
    try:
        yield world
    finally:
        await world.stop()


def top_level(world: SandboxWorld, channel: str) -> list[EmuMessage]:
    return [m for m in world.slack.messages(channel) if not m.is_reply]


def text_of(message: EmuMessage) -> str:
    return message.text + "\n" + json.dumps(message.blocks or [], ensure_ascii=False)
