"""Scenario: /dhanam logs through signed requests, against moto (CloudWatch Logs seeded by
sandbox/aws_logs.py), real Redis and the Slack emulator: the window and filter, the file path,
masking, and CloudWatch's failures."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from bot.wiring import Overrides
from sandbox.aws_logs import SANDBOX_LOG_SECRETS
from sandbox.aws_world import DhanamWorld
from sandbox.slack_emulator_models import EmuChannel, EmuMessage
from sandbox.world import EXAMPLE_CONFIG, SandboxWorld
from tests.fixtures.bot import aws_sandbox

REGION = "us-east-1"


@pytest.fixture
async def bot(redis_url: str, aws_world: DhanamWorld) -> AsyncIterator[SandboxWorld]:
    async with aws_sandbox(redis_url, aws_world, Overrides(sweeper=False)) as sandbox:
        yield sandbox


async def logs(bot: SandboxWorld, text: str, user: str = "alice") -> EmuMessage:
    reply = await bot.slash(f"logs {text}", user=user)
    assert reply.status == 200
    await bot.settle()
    return bot.slack.ephemerals(bot.user_id(user))[-1]


def shown(message: EmuMessage) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


def code_lines(message: EmuMessage) -> list[str]:
    lines: list[str] = []
    for block in message.blocks or []:
        text = block.get("text", {}).get("text", "")
        if block["type"] == "section" and text.startswith("```"):
            lines.extend(text.strip("`").strip("\n").split("\n"))
    return lines


def every_slack_call(bot: SandboxWorld) -> str:
    """Everything the bot sent to Slack: Web API calls, response_url posts, file bytes."""
    calls = json.dumps([c.params for c in bot.slack.calls], ensure_ascii=False, default=str)
    files = "".join(f.text for f in bot.slack.world.uploads.files.values())
    return calls + files


async def test_default_window_newest_first_with_levels_and_a_console_link(
    bot: SandboxWorld,
) -> None:
    message = await logs(bot, "api production")
    assert message.text == "api · production · last 15 min · 50 lines (newest first)"
    blocks = shown(message)
    assert "ERROR " in blocks
    assert "WARN " in blocks
    assert "INFO " in blocks
    assert (
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:"
        in blocks
    )
    assert "log-group/$252Fecs$252Fdhanam-api/log-events$3Fstart$3D" in blocks
    lines = code_lines(message)
    assert len(lines) == 50
    stamps = [line.split()[0] for line in lines]
    # Newest first. The lines show HH:MM:SS only: across midnight an older line reads later
    # (23:59 after 00:02), so count seconds back from the first line, a day added on wrapping.
    seconds = [
        sum(int(p) * m for p, m in zip(s.split(":"), (3600, 60, 1), strict=True)) for s in stamps
    ]
    ages = [(seconds[0] - value) % 86400 for value in seconds]
    assert ages == sorted(ages), stamps
    assert bot.slack.calls_to("files.getUploadURLExternal") == []
    assert bot.slack.messages("C0OPS") == []  # ephemeral only


async def test_since_grep_and_limit(bot: SandboxWorld) -> None:
    message = await logs(bot, "web production --since 2h --grep timeout --limit 7")
    assert (
        message.text == 'web · production · last 2 h · matching "timeout" · 7 lines (newest first)'
    )
    lines = code_lines(message)
    assert len(lines) == 7
    assert all("timeout" in line for line in lines)
    assert "$3FfilterPattern$3D$2522timeout$2522$26start" in shown(message)


async def test_limit_500_goes_up_as_a_file_in_the_channel(bot: SandboxWorld) -> None:
    message = await logs(bot, "api production --since 2h --limit 500")
    assert message.text == "api · production · last 2 h · 500 lines (newest first)"
    inline = code_lines(message)
    assert 0 < len(inline) < 500
    assert "in the file I posted in this channel" in shown(message)
    assert "older lines: every line is in the file" in shown(message)
    [url] = bot.slack.calls_to("files.getUploadURLExternal")
    assert url.ok
    [done] = bot.slack.calls_to("files.completeUploadExternal")
    assert done.ok
    assert done.params["channel_id"] == "C0OPS"
    [file] = bot.slack.world.uploads.files.values()
    assert file.completed
    assert file.channel == "C0OPS"
    assert file.title == "api · production · last 2 h · 500 lines (newest first)"
    assert file.filename.startswith("api-production-logs-")
    assert "<@U0ALICE> asked for these logs: api · production" in (file.initial_comment or "")
    text = file.text.splitlines()
    assert len(text) == 500
    assert "api/api/" in text[0]
    posted = bot.slack.messages("C0OPS")[-1]
    assert posted.files[0]["id"] == file.id
    assert posted.text == file.initial_comment


async def test_secrets_in_log_lines_never_reach_slack(bot: SandboxWorld) -> None:
    await logs(bot, "api production --since 2h --limit 500")
    await logs(bot, "web production")
    await logs(bot, "api production --grep plaid")
    sent = every_slack_call(bot)
    assert "[redacted]" in sent
    for secret in SANDBOX_LOG_SECRETS:
        assert secret not in sent


async def test_a_missing_log_group_is_named(bot: SandboxWorld) -> None:
    client: Any = boto3.client("logs", endpoint_url=bot.aws_endpoint_url, region_name=REGION)
    client.delete_log_group(logGroupName="/ecs/dhanam-web")
    message = await logs(bot, "web staging")
    assert message.text.startswith("Could not read web's logs in staging: log group")
    assert "`/ecs/dhanam-web` not found in us-east-1" in shown(message)


async def test_access_denied_is_named_with_the_action_needed(bot: SandboxWorld) -> None:
    from botocore.exceptions import ClientError  # noqa: PLC0415

    client = _logs_client(bot)

    def deny(**_kwargs: object) -> None:
        raise ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}},
            "FilterLogEvents",
        )

    client.meta.events.register("before-call.logs.FilterLogEvents", deny)
    try:
        message = await logs(bot, "api production")
    finally:
        client.meta.events.unregister("before-call.logs.FilterLogEvents", deny)
    assert "AWS refused FilterLogEvents: AccessDeniedException" in message.text
    assert "logs:FilterLogEvents on `/ecs/dhanam-api`" in message.text
    assert bot.slack.calls_to("files.getUploadURLExternal") == []

    def throttle(**_kwargs: object) -> None:
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
            "FilterLogEvents",
        )

    client.meta.events.register("before-call.logs.FilterLogEvents", throttle)
    try:
        message = await logs(bot, "web production")
    finally:
        client.meta.events.unregister("before-call.logs.FilterLogEvents", throttle)
    assert message.text == (
        "Could not read web's logs in production: CloudWatch Logs is throttling the bot "
        "(ThrottlingException); try again in a minute"
    )


async def test_a_moment_not_in_the_past_is_refused(bot: SandboxWorld) -> None:
    message = await logs(bot, "api production --since 2099-01-01T00:00:00Z")
    assert message.text == "--since 2099-01-01 00:00 UTC is not in the past"


@pytest.fixture
async def hasty_bot(
    redis_url: str, aws_world: DhanamWorld, tmp_path: Path
) -> AsyncIterator[SandboxWorld]:
    """[status] source_timeout_seconds = 0.5: the logs command gets 1 s in all."""
    config = tmp_path / "dhanam.toml"
    text = EXAMPLE_CONFIG.read_text()
    config.write_text(text.replace("source_timeout_seconds = 3.0", "source_timeout_seconds = 0.5"))
    async with aws_sandbox(
        redis_url, aws_world, Overrides(sweeper=False), config_path=config
    ) as sandbox:
        yield sandbox


async def test_slow_cloudwatch_is_answered_within_the_budget(hasty_bot: SandboxWorld) -> None:
    client = _logs_client(hasty_bot)

    def slow(**_kwargs: object) -> None:
        time.sleep(2.5)

    client.meta.events.register("before-call.logs.FilterLogEvents", slow)
    started = time.monotonic()
    try:
        message = await logs(hasty_bot, "api production")
    finally:
        client.meta.events.unregister("before-call.logs.FilterLogEvents", slow)
    assert time.monotonic() - started < 2.2  # 1 s budget, the ack and settling
    assert message.text.startswith("Could not read api's logs in production: CloudWatch Logs")
    assert "did not answer within" in message.text


def _logs_client(bot: SandboxWorld) -> Any:
    return bot.flow().runtime.aws.clients.client("logs", REGION)


async def test_help_logs(bot: SandboxWorld) -> None:
    reply = await bot.slash("help logs")
    assert "logs SERVICE ENV" in json.dumps(reply.body)


async def test_no_awslogs_configuration_is_said(bot: SandboxWorld) -> None:
    ecs: Any = boto3.client("ecs", endpoint_url=bot.aws_endpoint_url, region_name=REGION)
    current = ecs.describe_services(cluster="dhanam-staging", services=["dhanam-web"])
    arn = current["services"][0]["taskDefinition"]
    definition = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    container = {
        k: v for k, v in definition["containerDefinitions"][0].items() if k != "logConfiguration"
    }
    registered = ecs.register_task_definition(
        family="dhanam-web", containerDefinitions=[container]
    )["taskDefinition"]
    ecs.update_service(
        cluster="dhanam-staging",
        service="dhanam-web",
        taskDefinition=registered["taskDefinitionArn"],
    )
    message = await logs(bot, "web staging")
    assert message.text.startswith("Could not read web's logs in staging: no CloudWatch log group")
    assert "container `web` of `dhanam-web:4` does not log with the awslogs driver" in message.text


async def test_a_channel_the_bot_is_not_in_keeps_the_inline_part(bot: SandboxWorld) -> None:
    bot.slack.world.channels["C0QUIET"] = EmuChannel(
        "C0QUIET", "quiet", members=["U0ALICE", "U0BOB"]
    )
    reply = await bot.slash("logs api production --since 2h --limit 500", channel="C0QUIET")
    assert reply.status == 200
    await bot.settle()
    message = bot.slack.ephemerals("U0ALICE")[-1]
    assert message.text == "api · production · last 2 h · 500 lines (newest first)"
    assert len(code_lines(message)) > 50
    assert "I could not post the full text (500 lines) as a file in this channel" in shown(message)
    assert "`not_in_channel`" in shown(message)
    assert bot.slack.messages("C0QUIET") == []


async def test_a_long_non_ascii_grep_still_gets_a_reply(bot: SandboxWorld) -> None:
    """400 times `é`: the console link would be ~4,200 characters (the console encodes a filter
    twice); it leaves the filter out and says so, and Slack takes the reply."""
    grep = "é" * 400
    message = await logs(bot, f'api production --grep "{grep}"')
    assert message.text.startswith(f'api · production · last 15 min · matching "{grep}"')
    assert message.blocks
    assert "filter not included: too long" in shown(message)
    assert "Nothing logged in this window matching it." in shown(message)
    refused = [c for c in bot.slack.calls if c.method == "response_url" and c.status != 200]
    assert refused == []


async def test_a_refused_reply_falls_back_to_text(bot: SandboxWorld) -> None:
    bot.slack.inject(500, method="response_url", count=1)
    message = await logs(bot, "api production --grep timeout --limit 3")
    assert not message.blocks
    assert message.text.startswith(
        'api · production · last 15 min · matching "timeout" · 3 lines (newest first). '
        "Slack refused the formatted reply (`HTTP 500`)"
    )
    statuses = [c.status for c in bot.slack.calls if c.method == "response_url"]
    assert statuses == [500, 200]
