"""In doubt means never: the checkpoint before each AWS mutation, against a real redis-server.

An action makes two "mutations" (core.guard.before_mutation, the call call_aws makes before
every AWS operation that changes something) with a pause between them. Whatever happens in the
pause — the sweeper marks the request in doubt, someone locks the service — the second
mutation does not happen, and the outcome says what was already done instead of promising
that nothing was changed. The lease is kept alive from the claim on, even while Slack stalls.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

from approvals.flow import ActionRegistry, ApprovalFlow
from approvals.locks import Locks
from approvals.models import Action, ApprovalRequest, Plan, Result, State
from approvals.store import ApprovalStore
from core.clock import Clock, ManualClock, SystemClock
from core.config import load_config
from core.guard import before_mutation
from integrations.redis_client import RedisClient, create_redis

CONFIG = load_config(Path(__file__).resolve().parents[2] / "config" / "dhanam.example.toml")


class World:
    def __init__(self) -> None:
        self.mutations: list[tuple[str, str]] = []  # (request id, operation) that happened
        self.pause = asyncio.Event()
        self.paused = asyncio.Event()


WORLD: dict[str, World] = {}


class TwoStepAction(Action):
    kind: ClassVar[str] = "two_step"
    world: str

    @property
    def service(self) -> str | None:
        return "api"

    def title(self) -> str:
        return "Two steps"

    async def plan(self, runtime: Any) -> Plan:
        return Plan.build("Two steps on api", inputs={"fixed": 1})

    async def execute(self, plan: Plan, runtime: Any) -> Result:
        world = WORLD[self.world]
        await before_mutation("RegisterTaskDefinition")
        world.mutations.append((self.request_id or "", "RegisterTaskDefinition"))
        world.paused.set()
        await world.pause.wait()
        await before_mutation("UpdateService")
        world.mutations.append((self.request_id or "", "UpdateService"))
        return Result(ok=True, summary="both steps done")


class Notifier:
    def __init__(self, stall: float = 0.0) -> None:
        self.stall = stall
        self.told: list[tuple[str, str]] = []

    async def post_card(self, request: ApprovalRequest) -> tuple[str, str]:
        return "C0DEPLOYS", "1.0"

    async def update_card(self, request: ApprovalRequest) -> None:
        if request.state is State.EXECUTING and self.stall:
            await asyncio.sleep(self.stall)  # Slack is slow to answer this edit

    async def thread_reply(self, request: ApprovalRequest, text: str) -> None:
        return None

    async def tell(self, request: ApprovalRequest, user: str, text: str) -> None:
        self.told.append((user, text))


class Members:
    async def expand(self, principals: list[str], *, fresh: bool = False) -> frozenset[str]:
        return frozenset(p for p in principals if not p.startswith("S"))


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[RedisClient]:
    client = create_redis(redis_url)
    await client.flushall()
    yield client
    await client.aclose()


def make_flow(
    redis: RedisClient, clock: Clock, notifier: Notifier, lease: timedelta
) -> ApprovalFlow:
    registry = ActionRegistry()
    registry.add(TwoStepAction)
    return ApprovalFlow(
        config=CONFIG,
        store=ApprovalStore(redis, clock),
        locks=Locks(redis, clock),
        notifier=notifier,
        members=Members(),
        registry=registry,
        runtime=None,
        clock=clock,
        lease=lease,
    )


async def approved(flow: ApprovalFlow, name: str) -> tuple[World, ApprovalRequest]:
    world = WORLD[name] = World()
    submitted = await flow.submit(TwoStepAction(env="production", world=name), "U0ALICE", "C0OPS")
    click = await flow.approve(submitted.request.id, "U0BOB")
    assert click.refusal is None
    await asyncio.wait_for(world.paused.wait(), 5)  # the first mutation is done
    return world, submitted.request


async def test_marked_in_doubt_between_two_mutations_the_second_never_happens(
    redis: RedisClient,
) -> None:
    clock = ManualClock()
    notifier = Notifier()
    flow = make_flow(redis, clock, notifier, timedelta(seconds=30))
    world, request = await approved(flow, "in-doubt")
    clock.advance(31)  # the executor's replica stalls past its lease
    await flow.sweep_once()
    assert (await flow.store.get(request.id)).state is State.IN_DOUBT  # type: ignore[union-attr]
    world.pause.set()
    await flow.drain()
    assert world.mutations == [(request.id, "RegisterTaskDefinition")]
    stored = await flow.store.get(request.id)
    assert stored is not None
    assert stored.state is State.IN_DOUBT  # never re-run, never "succeeded"
    late = await redis.hget(f"dhanam:{{req:{request.id}}}", "late_outcome")
    assert late is not None
    assert "Stopped before UpdateService" in late
    assert "Already done: RegisterTaskDefinition" in late
    assert "nothing was changed" not in late.lower()


async def test_a_lock_taken_between_two_mutations_stops_the_second(redis: RedisClient) -> None:
    clock = ManualClock()
    notifier = Notifier()
    flow = make_flow(redis, clock, notifier, timedelta(seconds=30))
    world, request = await approved(flow, "locked")
    await flow.locks.hold("api:production", "db migration running", "U0CAROL")
    world.pause.set()
    await flow.drain()
    assert world.mutations == [(request.id, "RegisterTaskDefinition")]
    stored = await flow.store.get(request.id)
    assert stored is not None
    assert stored.state is State.FAILED
    assert stored.outcome is not None
    assert stored.outcome.startswith("Stopped before UpdateService")
    assert "db migration running" in stored.outcome
    assert "nothing was changed" not in stored.outcome.lower()
    assert notifier.told
    assert notifier.told[-1][0] == "U0BOB"  # the person whose click started it


async def test_the_lease_is_kept_alive_from_the_claim_while_slack_stalls(
    redis: RedisClient,
) -> None:
    """The card edit after the claim takes longer than the lease: the heartbeat, started at
    the claim, keeps the lease, so the sweeper does not mark a healthy execution in doubt."""
    clock = SystemClock()
    notifier = Notifier(stall=2.0)
    flow = make_flow(redis, clock, notifier, timedelta(seconds=0.9))
    name = "stall"
    world = WORLD[name] = World()
    world.pause.set()
    submitted = await flow.submit(TwoStepAction(env="production", world=name), "U0ALICE", "C0OPS")
    await flow.approve(submitted.request.id, "U0BOB")
    for _ in range(8):
        await asyncio.sleep(0.3)
        await flow.sweep_once()
    await flow.drain()
    stored = await flow.store.get(submitted.request.id)
    assert stored is not None
    assert stored.state is State.SUCCEEDED, stored.outcome
    assert [op for _, op in world.mutations] == ["RegisterTaskDefinition", "UpdateService"]
