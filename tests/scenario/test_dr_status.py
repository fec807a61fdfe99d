"""Scenario: `/dhanam dr status` through signed requests, against moto's us-west-2 DR world
(sandbox/dr_world.py), real Redis and the Slack emulator."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from bot.wiring import Overrides
from core.settings import LogFormat
from sandbox.aws_world import SANDBOX_AWS_ACCESS_KEY_ID, SANDBOX_AWS_SECRET_ACCESS_KEY, DhanamWorld
from sandbox.dr_world import DR_DB_INSTANCE, DR_REGION, DR_TARGET, PRIMARY_TARGET, break_dr
from sandbox.world import EXAMPLE_CONFIG, SandboxWorld

CREDENTIALS = {
    "aws_access_key_id": SANDBOX_AWS_ACCESS_KEY_ID,
    "aws_secret_access_key": SANDBOX_AWS_SECRET_ACCESS_KEY,
}
DR_BLOCK_START = "[dr]"


def write_config(
    tmp: Path, *, dr: bool = True, budget: float = 15.0, backups: str | None = None
) -> Path:
    """The example config; its [dr] table dropped when ``dr`` is False. The sources get 15 s
    (not the example's 3 s) unless a test is about the budget: a loaded CI machine must not
    turn moto's answers into timeouts."""
    text = EXAMPLE_CONFIG.read_text()
    text = text.replace("source_timeout_seconds = 3.0", f"source_timeout_seconds = {budget}")
    if backups is not None:
        replica = 'db_instance = "dhanam-production-dr"'
        text = text.replace(replica, f'automated_backup_arn = "{backups}"')
    if not dr:
        start = text.index(DR_BLOCK_START)
        end = text.find("\n[", start + 1)
        text = text[:start] + (text[end + 1 :] if end >= 0 else "")
    path = tmp / "dhanam.toml"
    path.write_text(text)
    return path


async def start(redis_url: str, aws_world: DhanamWorld, config: Path) -> SandboxWorld:
    world = SandboxWorld(
        config_path=config,
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
    redis_url: str, aws_world: DhanamWorld, tmp_path: Path
) -> AsyncIterator[SandboxWorld]:
    world = await start(redis_url, aws_world, write_config(tmp_path))
    try:
        yield world
    finally:
        await world.stop()


async def dr_status(world: SandboxWorld) -> tuple[str, list[str]]:
    """(notification text, the mrkdwn lines of every block) of the ephemeral reply."""
    reply = await world.slash("dr status", user="bob")
    assert reply.status == 200
    await world.settle()
    message = world.slack.ephemerals(world.user_id("bob"))[-1]
    lines: list[str] = []
    for block in message.blocks:
        texts = [block.get("text", {}), *list(block.get("elements", []))]
        for text in texts:
            lines += str(text.get("text", "")).splitlines()
    return message.text, lines


def line(lines: list[str], marker: str) -> str:
    found = [x for x in lines if marker in x]
    assert len(found) == 1, (marker, lines)
    return found[0]


def put_lag(world: SandboxWorld, seconds: float) -> None:
    cloudwatch = boto3.client(
        "cloudwatch", region_name=DR_REGION, endpoint_url=world.aws_endpoint_url, **CREDENTIALS
    )
    cloudwatch.put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": "ReplicaLag",
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": DR_DB_INSTANCE}],
                "Timestamp": datetime.now(UTC) - timedelta(minutes=2),
                "Value": seconds,
                "Unit": "Seconds",
            }
        ],
    )


async def test_dr_status_shows_the_replica_services_and_record(bot: SandboxWorld) -> None:
    text, lines = await dr_status(bot)
    replica = line(lines, "*Replica*")
    assert replica.startswith("✓")
    assert "`dhanam-production-dr` (us-west-2): available" in replica
    assert "replicating from `arn:aws:rds:us-east-1:123456789012:db:dhanam-production`" in replica
    # moto publishes no ReplicaLag: unknown, never 0 s.
    rpo = line(lines, "*RPO*")
    assert rpo.startswith("? *RPO* unknown")
    assert "no ReplicaLag datapoints" in rpo
    assert "0 s" not in rpo
    api = line(lines, "*api*")
    assert api.startswith("✓ *api* `dhanam-api`: 0/0 running")
    assert "`dhanam-api:v1.2.0` — the same as production (2 tasks)" in api
    assert line(lines, "*web*").startswith("✓ *web* `dhanam-web`: 0/0 running")
    record = line(lines, "*Failover record*")
    assert record.startswith(f"✓ *Failover record* `api.dhanam.io` (CNAME) → `{PRIMARY_TARGET}`")
    assert f"DR target `{DR_TARGET}`" in record
    assert "readiness unknown" in text  # the unknown lag makes the whole verdict unknown
    steps = "\n".join(lines)
    assert "has 3 steps left, against an RTO of 4 h" in steps
    assert "1. promote dhanam-production-dr to a standalone database" in steps
    assert "deploy production's images" not in steps  # the DR services run them already
    assert "2. scale api, web to production's counts" in steps
    assert f"3. switch api.dhanam.io to {DR_TARGET}" in steps


async def test_replica_lag_judges_the_rpo(bot: SandboxWorld) -> None:
    put_lag(bot, 42)
    text, lines = await dr_status(bot)
    assert line(lines, "*RPO*") == "✓ *RPO* 42 s (replica lag) — within the 1 h target"
    assert text.startswith("✓ DR in us-west-2: ready")

    put_lag(bot, 7300)  # newer than 42 s: the newest datapoint counts
    text, lines = await dr_status(bot)
    assert line(lines, "*RPO*") == "✗ *RPO* 2 h 1 min (replica lag) — over the 1 h target"
    assert text.startswith("✗ DR in us-west-2: not ready")


async def test_a_deleted_replica_is_not_found_and_the_rest_still_shown(
    bot: SandboxWorld,
) -> None:
    break_dr(bot.aws_endpoint_url, "replica", CREDENTIALS)
    break_dr(bot.aws_endpoint_url, "service", CREDENTIALS)
    text, lines = await dr_status(bot)
    assert (
        line(lines, "*Replica*")
        == "✗ *Replica* `dhanam-production-dr` (us-west-2): not found in us-west-2"
    )
    assert line(lines, "*RPO*").startswith("✗ *RPO* unknown — replica not found")
    assert line(lines, "*web*") == "✗ *web* `dhanam-web`: missing from `dhanam-dr`"
    assert line(lines, "*api*").startswith("✓ *api*")
    assert line(lines, "*Failover record*").startswith("✓ *Failover record*")
    assert text.startswith("✗ DR in us-west-2: not ready")
    steps = "\n".join(lines)
    assert (
        "1. no replica dhanam-production-dr to promote: restore the database from a backup" in steps
    )
    assert "deploy production's images to web" in steps


async def test_a_deleted_record_is_not_found(bot: SandboxWorld) -> None:
    break_dr(bot.aws_endpoint_url, "record", CREDENTIALS)
    _, lines = await dr_status(bot)
    assert line(lines, "*Failover record*") == (
        "✗ *Failover record* `api.dhanam.io`: not found in zone `Z0DHANAMSANDBOXDR`"
    )
    assert line(lines, "*Replica*").startswith("✓")


async def test_a_production_image_change_shows_on_the_service(bot: SandboxWorld) -> None:
    ecs = boto3.client(
        "ecs", region_name="us-east-1", endpoint_url=bot.aws_endpoint_url, **CREDENTIALS
    )
    ecs.update_service(
        cluster="dhanam-production", service="dhanam-web", taskDefinition="dhanam-web:2"
    )
    _, lines = await dr_status(bot)
    web = line(lines, "*web*")
    assert web.startswith("✗ *web*")
    assert "runs `dhanam-web:v1.2.0` — production runs `dhanam-web:v1.1.0`" in web
    assert "deploy production's images to web" in "\n".join(lines)


async def test_not_configured(redis_url: str, aws_world: DhanamWorld, tmp_path: Path) -> None:
    world = await start(redis_url, aws_world, write_config(tmp_path, dr=False))
    try:
        text, lines = await dr_status(world)
    finally:
        await world.stop()
    assert text.startswith("Disaster recovery is not configured. Add a `[dr]` table")
    assert "`automated_backup_arn`" in text
    assert len(lines) == 1


async def test_a_refusing_source_says_so_on_its_line(bot: SandboxWorld) -> None:
    from botocore.exceptions import ClientError  # noqa: PLC0415

    rds = bot.flow().runtime.aws.clients.client("rds", DR_REGION)

    def deny(**_kwargs: object) -> None:
        error = {"Code": "AccessDenied", "Message": "not authorized to perform: <rds:Describe*>"}
        raise ClientError({"Error": error}, "DescribeDBInstances")

    rds.meta.events.register("before-call.rds.DescribeDBInstances", deny)
    try:
        text, lines = await dr_status(bot)
    finally:
        rds.meta.events.unregister("before-call.rds.DescribeDBInstances", deny)
    assert line(lines, "*Replica*") == (
        "? *Replica* `dhanam-production-dr` (us-west-2): unavailable (AWS refused "
        "DescribeDBInstances: AccessDenied — not authorized to perform: &lt;rds:Describe*&gt;)"
    )
    assert line(lines, "*RPO*").startswith("? *RPO* unknown — database unreadable (AWS refused")
    assert line(lines, "*api*").startswith("✓ *api*")
    assert line(lines, "*Failover record*").startswith("✓ *Failover record*")
    assert text.startswith("? DR in us-west-2: readiness unknown")


async def test_a_slow_source_times_out_without_holding_the_reply(
    redis_url: str, aws_world: DhanamWorld, tmp_path: Path
) -> None:
    world = await start(redis_url, aws_world, write_config(tmp_path, budget=1.5))
    route53 = world.flow().runtime.aws.clients.client("route53")

    def slow(**_kwargs: object) -> None:
        time.sleep(3.0)  # in the worker thread the call runs in

    route53.meta.events.register("before-call.route53.ListResourceRecordSets", slow)
    try:
        started = time.perf_counter()
        _, lines = await dr_status(world)
        elapsed = time.perf_counter() - started
    finally:
        route53.meta.events.unregister("before-call.route53.ListResourceRecordSets", slow)
        await world.stop()
    assert line(lines, "*Failover record*") == (
        "? *Failover record* `api.dhanam.io`: unavailable (timed out after 1.5 s)"
    )
    assert elapsed < 2.9  # the budget, not the slow call
    assert line(lines, "*Replica*")  # the other sources still have their lines
    assert line(lines, "*api*")


async def test_replicated_backups_none_found(
    redis_url: str, aws_world: DhanamWorld, tmp_path: Path
) -> None:
    arn = "arn:aws:rds:us-west-2:123456789012:auto-backup:ab-dhanam"
    world = await start(redis_url, aws_world, write_config(tmp_path, backups=arn))
    try:
        text, lines = await dr_status(world)
    finally:
        await world.stop()
    # moto lists no automated backups for any ARN
    assert line(lines, "*Replicated backups*") == (
        f"✗ *Replicated backups* `{arn}`: no replicated backups found"
    )
    assert line(lines, "*RPO*") == "✗ *RPO* unknown — no replicated backups found; target 1 h"
    assert "restore the newest replicated backup into a new instance" in "\n".join(lines)
    assert text.startswith("✗ DR in us-west-2: not ready")
