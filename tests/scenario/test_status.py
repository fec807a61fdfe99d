"""Scenario: /dhanam status and the App Home through signed requests, against moto, real Redis,
the Slack emulator and a fake Dhanam API whose mode each test sets."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from pydantic import ValidationError

from bot.wiring import Overrides
from core.settings import LogFormat
from integrations.dhanam_api import DatabaseBody, HealthBody, Level, ProvidersBody, level
from sandbox.aws_world import DhanamWorld
from sandbox.fake_dhanam_api import ApiMode, FakeDhanamApi
from sandbox.signing import JSON_CONTENT_TYPE, event_callback_body, sign
from sandbox.world import EXAMPLE_CONFIG, SandboxWorld
from tests.fixtures.bot import _BoltArgumentWarnings

ALB = "app/dhanam-production-alb/0123456789abcdef"
ERRORS = [0, 0, 1, 0, 12, 3, 0]  # HTTPCode_Target_5XX_Count per 5 min, oldest first
LATENCY = [0.12, 0.15, 0.2, 2.4, 0.3, 0.18, 0.14]  # TargetResponseTime (s)


def write_config(tmp: Path, api: FakeDhanamApi, staging_cluster: str = "dhanam-staging") -> Path:
    """The example config with each environment's API on the fake, under its own prefix."""
    text = EXAMPLE_CONFIG.read_text().replace(
        'api_base_url = "https://api.dhanam.io"',
        f'api_base_url = "{api.base_url("production")}"',
    )
    text = text.replace(
        'cluster = "dhanam-staging"',
        f'cluster = "{staging_cluster}"\napi_base_url = "{api.base_url("staging")}"',
    )
    # AWS and Redis sources get more than the example's 3 s: these tests are not about that
    # budget, and a loaded CI machine must not turn moto's answers into "unavailable".
    text = text.replace("source_timeout_seconds = 3.0", "source_timeout_seconds = 15.0")
    path = tmp / "dhanam.toml"
    path.write_text(text)
    return path


@pytest.fixture
async def api() -> AsyncIterator[FakeDhanamApi]:
    async with FakeDhanamApi() as fake:
        yield fake


@pytest.fixture
def bolt_warnings() -> Iterator[None]:
    watcher = _BoltArgumentWarnings()
    logging.getLogger().addHandler(watcher)
    yield
    logging.getLogger().removeHandler(watcher)
    assert watcher.messages == [], f"Bolt rejected listener arguments: {watcher.messages}"


async def start_bot(redis_url: str, aws_world: DhanamWorld, config_path: Path) -> SandboxWorld:
    world = SandboxWorld(
        config_path=config_path,
        redis_url=redis_url,
        aws=False,
        aws_endpoint_url=aws_world.endpoint_url,
        log_format=LogFormat.JSON,
        overrides=Overrides(sweeper=False),
    )
    await world.start()
    world.world = aws_world
    return world


@pytest.fixture
async def bot(
    redis_url: str, aws_world: DhanamWorld, api: FakeDhanamApi, tmp_path: Path, bolt_warnings: None
) -> AsyncIterator[SandboxWorld]:
    world = await start_bot(redis_url, aws_world, write_config(tmp_path, api))
    try:
        yield world
    finally:
        await world.stop()


def cloudwatch(world: SandboxWorld) -> Any:
    return boto3.client("cloudwatch", region_name="us-east-1", endpoint_url=world.aws_endpoint_url)


def put_traffic(world: SandboxWorld) -> None:
    now = datetime.now(UTC)
    data = []
    for i, (errors, latency) in enumerate(zip(ERRORS, LATENCY, strict=True)):
        at = now - timedelta(minutes=5 * (len(ERRORS) - i) - 2)
        dims = [{"Name": "LoadBalancer", "Value": ALB}]
        data.append(
            {
                "MetricName": "HTTPCode_Target_5XX_Count",
                "Dimensions": dims,
                "Timestamp": at,
                "Value": errors,
                "Unit": "Count",
            }
        )
        data.append(
            {
                "MetricName": "TargetResponseTime",
                "Dimensions": dims,
                "Timestamp": at,
                "Value": latency,
                "Unit": "Seconds",
            }
        )
    cloudwatch(world).put_metric_data(Namespace="AWS/ApplicationELB", MetricData=data)


def set_alarm(world: SandboxWorld, name: str, state: str) -> None:
    cloudwatch(world).set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")


async def status_of(world: SandboxWorld, text: str, user: str = "bob") -> tuple[str, str]:
    """(notification text, every block's text joined) of the ephemeral status reply."""
    reply = await world.slash(f"status {text}".strip(), user=user)
    assert reply.status == 200
    await world.settle()
    message = world.slack.ephemerals(world.user_id(user))[-1]
    return message.text, json.dumps(message.blocks, ensure_ascii=False)


async def test_one_service_shows_every_source(bot: SandboxWorld, api: FakeDhanamApi) -> None:
    put_traffic(bot)
    set_alarm(bot, "dhanam-api-high-error-rate", "ALARM")
    await bot.slash("deploy api production v1.3.0 --reason fix login", user="alice")
    await bot.slash('lock api production "db migration running"', user="carol")
    await bot.settle()

    text, blocks = await status_of(bot, "api production")
    assert text == "api in production: degraded — 1 alarm in ALARM"
    assert bot.slack.messages("C0OPS")[-1].text.startswith(":lock:")  # nothing else posted
    for expected in (
        "`dhanam-api:3`",  # task-definition revision
        "`v1.2.0` `sha256:",  # image tag and short digest (ECR)
        "running 2 · pending 0 · desired 2",
        "primary `dhanam-api:3` — completed · 2/2 running",
        "*Recent events*",
        # the service's alarms, ALARM first
        "`dhanam-api-high-error-rate` *ALARM*",
        "`dhanam-api-high-response-time` *OK*",
        f"(`{ALB}`)",
        "min 0 · max 12",  # 5xx sparkline
        "min 120 ms · max 2.40 s",  # latency sparkline
        f"*API health* {api.base_url('production')}",
        "`/health` ok ·",  # the guide's {"status": "healthy", "timestamp": …}
        "`/health/database` ok · 5 connections · 150 queries/s",
        "plaid ok",
        "belvo ok",
        "bitso ok",
        "none recorded by the bot",
        "Deploy api to production: v1.2.0 → v1.3.0 — asked by <@U0ALICE>, 0 of 1 approval,",
        "locked by <@U0CAROL>",
        "db migration running",
        "Only you can see this",
    ):
        assert expected in blocks, expected
    assert blocks.index("*ALARM*") < blocks.index("*OK*")
    spark = next(line for line in blocks.split("\\n") if "5xx" in line)
    assert "█" in spark
    assert "▁" in spark
    assert api.requests["/production/health/providers"] == 1


async def test_last_deploy_who_and_when(bot: SandboxWorld) -> None:
    await bot.slash("deploy api staging v1.3.0 --reason try it", user="dave")
    await bot.settle()
    _, blocks = await status_of(bot, "api staging", user="dave")
    assert "*Last deploy*" in blocks
    assert "deploy to `v1.3.0` (`dhanam-api:3` → `dhanam-api:4`) by <@U0DAVE>" in blocks
    assert "approved by no one (none required)" in blocks
    assert "<!date^" in blocks


async def test_bitso_saying_degraded_is_shown_degraded(
    bot: SandboxWorld, api: FakeDhanamApi
) -> None:
    """The documented flat providers map with `"bitso": "degraded"`, through a signed command."""
    await api.set_mode(ApiMode.DEGRADED)
    text, blocks = await status_of(bot, "api production")
    assert text == "api in production: degraded — API health degraded; provider bitso degraded"
    assert "bitso degraded" in blocks
    assert "plaid ok" in blocks
    assert "belvo ok" in blocks
    _, overview = await status_of(bot, "production")
    api_row = next(r for r in overview.split("\\n") if "*api* in *production*" in r)
    assert ":large_yellow_circle:" in api_row, api_row


async def test_richer_answers_are_tolerated(bot: SandboxWorld, api: FakeDhanamApi) -> None:
    """Extra keys, a version, per-provider objects with status/latency_ms under "providers"."""
    await api.set_mode(ApiMode.RICH)
    text, blocks = await status_of(bot, "api production")
    assert text == "api in production: degraded — provider bitso degraded"
    for expected in (
        "`/health` ok · 1.2.0",
        "`/health/database` ok · 12/100 connections · 340.5 queries/s",
        "plaid ok (120 ms)",
        "belvo ok (180 ms)",
        "bitso degraded (950 ms) — slow quotes",
    ):
        assert expected in blocks, expected


def test_the_documented_shapes_are_read_exactly() -> None:
    assert HealthBody.model_validate(
        {"status": "healthy", "timestamp": "2024-01-01T12:00:00Z"}
    ) == HealthBody(status="ok", timestamp="2024-01-01T12:00:00Z")
    db = DatabaseBody.model_validate(
        {"status": "healthy", "connections": 5, "queries_per_second": 150}
    )
    assert (db.status, db.connections, db.queries_per_second) == ("ok", 5, 150.0)
    flat = ProvidersBody.model_validate({"plaid": "healthy", "belvo": "OK", "bitso": "degraded"})
    assert {n: p.status for n, p in flat.providers.items()} == {
        "plaid": "ok",
        "belvo": "ok",
        "bitso": "degraded",
    }
    assert flat.status is None


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("healthy", Level.OK),
        ("ok", Level.OK),
        ("Healthy", Level.OK),
        ("degraded", Level.DEGRADED),
        ("down", Level.DOWN),
        ("unhealthy", Level.DOWN),
        ("maintenance", Level.DOWN),
        ("", Level.DOWN),
        (None, Level.DOWN),
    ],
)
def test_status_words(word: str | None, expected: Level) -> None:
    assert level(word) is expected


def test_richer_and_odd_provider_answers() -> None:
    rich = ProvidersBody.model_validate(
        {
            "status": "ok",
            "timestamp": "2024-01-01T12:00:00Z",
            "providers": {
                "plaid": {"status": "ok", "latency_ms": 120, "extra": [1]},
                "bitso": {"latency_ms": "n/a"},  # no status: down
                "belvo": "healthy",
            },
        }
    )
    got = {n: (p.status, p.latency_ms) for n, p in rich.providers.items()}
    assert got == {"plaid": ("ok", 120.0), "bitso": ("down", None), "belvo": ("ok", None)}
    flat = ProvidersBody.model_validate(
        {"plaid": {"status": "healthy", "latency_ms": 80}, "bitso": 3, "timestamp": "now"}
    )
    # a documented provider answering a non-word is down; the timestamp is not a provider
    assert {n: p.status for n, p in flat.providers.items()} == {"plaid": "ok", "bitso": "down"}
    with pytest.raises(ValidationError):
        ProvidersBody.model_validate({"timestamp": "now"})
    with pytest.raises(ValidationError):
        ProvidersBody.model_validate(["plaid"])


async def test_a_slow_api_is_unavailable_and_delays_nothing_past_its_budget(
    bot: SandboxWorld, api: FakeDhanamApi
) -> None:
    await api.set_mode(ApiMode.SLOW)
    started = time.monotonic()
    text, blocks = await status_of(bot, "api production")
    elapsed = time.monotonic() - started
    # 2 s budget, the three endpoints and every other source read at once: one after another
    # would be 6 s or more (the bound leaves room for a loaded machine: 4 test workers)
    assert elapsed < 5.0, elapsed
    assert "health endpoint down (timed out after 2 s)" in text
    for path in ("/health", "/health/database", "/health/providers"):
        assert f"`{path}` unavailable (timed out after 2 s)" in blocks
    assert "running 2 · pending 0 · desired 2" in blocks  # the rest is all there
    assert "`dhanam-api-high-error-rate` *OK*" in blocks


@pytest.mark.parametrize(
    ("mode", "reason"),
    [(ApiMode.ERROR, "HTTP 500"), (ApiMode.STOPPED, "connection refused")],
)
async def test_a_failing_api_is_down(
    bot: SandboxWorld, api: FakeDhanamApi, mode: ApiMode, reason: str
) -> None:
    await api.set_mode(mode)
    text, blocks = await status_of(bot, "api production")
    assert text.startswith(f"api in production: down — health endpoint down ({reason})")
    assert f"`/health/database` unavailable ({reason})" in blocks
    assert "running 2 · pending 0 · desired 2" in blocks
    await api.set_mode(ApiMode.HEALTHY)
    text, _ = await status_of(bot, "api production")
    assert text == "api in production: ok — all clear"


async def test_overview_is_one_row_per_service_and_environment(
    bot: SandboxWorld, api: FakeDhanamApi
) -> None:
    set_alarm(bot, "dhanam-api-high-error-rate", "ALARM")
    set_alarm(bot, "dhanam-api-high-response-time", "ALARM")
    await api.set_mode(ApiMode.ERROR, "staging")
    await bot.slash('lock web production "load test"', user="carol")
    text, blocks = await status_of(bot, "")
    rows = json.loads(blocks)[1]["text"]["text"].split("\n")
    assert len(rows) == 4
    api_prod = next(r for r in rows if "*api* in *production*" in r)
    assert api_prod.startswith(":large_yellow_circle:")
    assert "degraded (2 alarms in ALARM)" in api_prod
    assert "`dhanam-api:3` v1.2.0 · 2/2 running" in api_prod
    web_prod = next(r for r in rows if "*web* in *production*" in r)
    assert web_prod.startswith(":large_green_circle:")
    assert ":lock: locked" in web_prod
    staging = [r for r in rows if "*staging*" in r]
    assert all(r.startswith(":red_circle:") for r in staging)
    assert all("health endpoint down (HTTP 500)" in r for r in staging)
    assert text == "Status: 1 ok, 1 degraded, 2 down"

    _, only_prod = await status_of(bot, "production")
    assert only_prod.count("in *production*") == 2
    assert "*staging*" not in only_prod
    _, only_web = await status_of(bot, "web")
    assert only_web.count("*web* in") == 2
    assert "*api*" not in only_web


async def test_ecs_failure_is_shown_in_its_place(
    redis_url: str, aws_world: DhanamWorld, api: FakeDhanamApi, tmp_path: Path
) -> None:
    config = write_config(tmp_path, api, staging_cluster="dhanam-nowhere")
    world = await start_bot(redis_url, aws_world, config)
    try:
        text, blocks = await status_of(world, "api staging")
        assert "ECS unavailable (" in text
        assert "*ECS* unavailable (AWS refused DescribeServices: ClusterNotFound" in blocks
        assert "`/health` ok" in blocks  # the other sources are still there
        assert "*Alarms*" in blocks
    finally:
        await world.stop()


async def test_app_home_shows_the_overview(bot: SandboxWorld) -> None:
    set_alarm(bot, "dhanam-api-high-response-time", "ALARM")
    event = {
        "type": "app_home_opened",
        "user": "U0BOB",
        "channel": "D0BOB",
        "tab": "home",
        "event_ts": f"{time.time():.6f}",
    }
    body = event_callback_body(event)
    reply = await bot.post(
        "/slack/events", body, sign(bot.signing_secret, body, content_type=JSON_CONTENT_TYPE)
    )
    assert reply.status == 200
    await bot.settle()
    view = bot.slack.published_view("U0BOB")
    assert view is not None
    assert view["type"] == "home"
    text = json.dumps(view["blocks"], ensure_ascii=False)
    assert "*api* in *production* — degraded (1 alarm in ALARM)" in text
    assert text.count(" in *staging*") == 2
    assert "Updated <!date^" in text
    assert bot.slack.published_view("U0ALICE") is None


async def test_messages_tab_publishes_nothing(bot: SandboxWorld) -> None:
    event = {"type": "app_home_opened", "user": "U0BOB", "channel": "D0BOB", "tab": "messages"}
    body = event_callback_body(event)
    reply = await bot.post(
        "/slack/events", body, sign(bot.signing_secret, body, content_type=JSON_CONTENT_TYPE)
    )
    assert reply.status == 200
    await bot.settle()
    assert bot.slack.published_view("U0BOB") is None


async def test_an_alarm_counts_only_for_the_environment_it_watches(
    bot: SandboxWorld, api: FakeDhanamApi
) -> None:
    """Production's alarm in ALARM (the config lists it under [environments.production]):
    production is degraded, staging is not — it is not staging's alarm."""
    set_alarm(bot, "dhanam-api-high-error-rate", "ALARM")
    text, _ = await status_of(bot, "api production")
    assert text == "api in production: degraded — 1 alarm in ALARM"
    text, blocks = await status_of(bot, "api staging")
    assert text == "api in staging: ok — all clear"
    assert "dhanam-api-high-error-rate" not in blocks
    assert "none that watch staging" in blocks
    assert "dhanam-production" not in blocks  # nor production's load balancer


async def test_alarms_no_environment_claims_are_shown_apart_and_never_degrade(
    redis_url: str, aws_world: DhanamWorld, api: FakeDhanamApi, tmp_path: Path
) -> None:
    """Without `[environments.production] alarms`, the api alarms (no ClusterName dimension,
    production and staging both in us-east-1) belong to no one environment: both rows show
    them under "Unscoped alarms", and neither is degraded by them."""
    path = write_config(tmp_path, api)
    text = path.read_text()
    listed = 'alarms = ["dhanam-api-high-error-rate", "dhanam-api-high-response-time"]\n'
    first = text.index(listed)
    path.write_text(text[:first] + text[first + len(listed) :])  # the environment's list only
    world = await start_bot(redis_url, aws_world, path)
    try:
        set_alarm(world, "dhanam-api-high-error-rate", "ALARM")
        for env in ("production", "staging"):
            summary, blocks = await status_of(world, f"api {env}")
            assert summary == f"api in {env}: ok — 1 unscoped alarm in ALARM"  # said, not counted
            assert "*Unscoped alarms*" in blocks
            assert "`dhanam-api-high-error-rate` *" in blocks
    finally:
        await world.stop()
