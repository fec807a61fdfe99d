"""The same guarantees on Redis Cluster (REDIS_CLUSTER=1, ElastiCache cluster mode): a local
3-master cluster of redis-server processes; every multi-key script runs on hash-tagged keys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio.cluster import RedisCluster

from approvals.models import State
from bot.app import DEPS
from bot.wiring import Overrides
from core.clock import ManualClock
from core.settings import LogFormat
from sandbox.aws_world import DhanamWorld
from sandbox.world import SandboxWorld
from tests.fixtures.bot import FAST_ROLLOUTS, aws_sandbox
from tests.integration.test_approval_flow import (
    EXECUTIONS,
    MANY,
    CountingAction,
    _button,
    _card,
    _emulator,
)
from tests.integration.test_rollout_follower import check_takeover


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    from sandbox.world import EXAMPLE_CONFIG  # noqa: PLC0415

    text = EXAMPLE_CONFIG.read_text().replace(
        'approvers = ["U0BOB", "U0CAROL", "S0SRE"]',
        'approvers = ["U0BOB", "U0CAROL", "S0SRE", "S0MANY"]',
    )
    path = tmp_path / "dhanam.toml"
    path.write_text(text)
    return path


@pytest.fixture
async def cluster_pair(cluster_url: str, config_path: Path) -> AsyncIterator[SandboxWorld]:
    world = SandboxWorld(
        config_path=config_path,
        redis_url=cluster_url,
        redis_cluster=True,
        aws=False,
        log_format=LogFormat.JSON,
        replicas=2,
        overrides=Overrides(clock=ManualClock(), extra_actions=[CountingAction], sweeper=False),
        slack_factory=_emulator,
    )
    await world.start()
    yield world
    await world.stop()


async def test_the_bot_really_talks_to_a_cluster(cluster_pair: SandboxWorld) -> None:
    assert isinstance(cluster_pair.apps[0][DEPS].redis, RedisCluster)
    async with (
        aiohttp.ClientSession() as session,
        session.get(cluster_pair.bot_url + "/health") as resp,
    ):
        assert resp.status == 200
        assert (await resp.json())["checks"]["redis"]["ok"] is True


async def test_fifty_concurrent_clicks_on_two_replicas_run_once_on_a_cluster(
    cluster_pair: SandboxWorld,
) -> None:
    for round_ in range(5):
        marker = f"cluster-race-{round_}"
        submitted = await cluster_pair.flow(0).submit(
            CountingAction(env="production", marker=marker), "U0ALICE", "C0OPS"
        )
        request = submitted.request
        card = _card(cluster_pair, request)
        approve = _button(card, "Approve")
        replies = await asyncio.gather(
            *(
                cluster_pair.click(card, approve, user=user, replica=i % 2)
                for i, user in enumerate(MANY)
            )
        )
        assert all(r.status == 200 for r in replies)
        await cluster_pair.settle()
        stored = await cluster_pair.flow(0).store.get(request.id)
        for _ in range(100):  # a loaded machine: the execution may still be finishing
            if stored is not None and stored.state is not State.APPROVED:
                break
            await asyncio.sleep(0.2)
            await cluster_pair.settle()
            stored = await cluster_pair.flow(0).store.get(request.id)
        assert stored is not None
        assert stored.state is State.SUCCEEDED
        assert len(stored.approvals) == 1
        assert EXECUTIONS[marker] == 1
        events = [e["event"] for e in await cluster_pair.flow(1).store.events(request.id)]
        assert events == ["created", "pending", "approved", "executing", "succeeded"]


async def test_sweeper_and_leases_on_a_cluster(cluster_pair: SandboxWorld) -> None:
    clock = cluster_pair.apps[0][DEPS].clock
    assert isinstance(clock, ManualClock)
    submitted = await cluster_pair.flow(0).submit(
        CountingAction(env="production", marker="cluster-expiry"), "U0ALICE", "C0OPS"
    )
    clock.advance(901)
    async with cluster_pair.flow(1).store.lease("sweeper", timedelta(seconds=5)) as held:
        assert held is not None
        assert await cluster_pair.flow(1).sweep_once() == 1
    stored = await cluster_pair.flow(0).store.get(submitted.request.id)
    assert stored is not None
    assert stored.state is State.EXPIRED


@pytest.fixture
async def cluster_aws_pair(cluster_url: str, aws_world: DhanamWorld) -> AsyncIterator[SandboxWorld]:
    overrides = Overrides(sweeper=True, rollouts=FAST_ROLLOUTS)
    async with aws_sandbox(
        cluster_url, aws_world, overrides, replicas=2, redis_cluster=True
    ) as world:
        yield world


async def test_rollout_follower_takeover_on_a_cluster(
    cluster_aws_pair: SandboxWorld, aws_world: DhanamWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    await check_takeover(cluster_aws_pair, aws_world, monkeypatch)


async def test_alarm_outbox_and_threading_on_a_cluster(cluster_url: str) -> None:
    from datetime import timedelta as td  # noqa: PLC0415

    from tests.scenario.alarm_support import (  # noqa: PLC0415
        FAST,
        T0,
        alarm_world,
        deliver,
        notification,
        text_of,
        top_level,
    )

    async with alarm_world(cluster_url, FAST, replicas=2, redis_cluster=True) as world:
        name = "dhanam-api-high-error-rate"
        first = await deliver(world, notification(world, name, "ALARM", T0), replica=0)
        assert first.status == 200
        await world.settle_alarms()  # posted before the OK arrives (else they coalesce)
        ok = notification(world, name, "OK", T0 + td(seconds=90), "ALARM")
        assert (await deliver(world, ok, replica=1)).status == 200
        assert (await deliver(world, ok, replica=0)).status == 200  # a duplicate delivery
        await world.settle_alarms()
        roots = top_level(world, "C0DEPLOYS")
        assert len(roots) == 1
        assert "*OK*" in text_of(roots[0])
        assert len(world.slack.thread("C0DEPLOYS", roots[0].ts)) == 2  # root + the OK reply
