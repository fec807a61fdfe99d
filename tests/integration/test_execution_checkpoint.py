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
from slack_sdk.errors import SlackApiError

from approvals.flow import ActionRegistry, ApprovalFlow
from approvals.locks import Locks
from approvals.models import Action, ApprovalRequest, Plan, Result, State
from approvals.store import ApprovalStore
from core.clock import Clock, ManualClock, SystemClock
from core.config import load_config
from core.errors import ChatOpsError, StoreUnavailableError
from core.guard import before_mutation
from integrations.redis_client import RedisClient, create_redis
from integrations.slack.usergroups import GroupMembers

CONFIG = load_config(Path(__file__).resolve().parents[2] / "examples" / "dhanam.example.toml")


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
        self.posted: list[str] = []

    async def post_card(self, request: ApprovalRequest) -> tuple[str, str]:
        self.posted.append(request.id)
        return "C0DEPLOYS", "1.0"

    async def update_card(self, request: ApprovalRequest) -> None:
        if request.state is State.EXECUTING and self.stall:
            await asyncio.sleep(self.stall)  # Slack is slow to answer this edit

    async def thread_reply(self, request: ApprovalRequest, text: str) -> None:
        return None

    async def tell(self, request: ApprovalRequest, user: str, text: str) -> None:
        self.told.append((user, text))


class Members:
    async def resolve(
        self, principals: list[str], *, fresh: bool = False
    ) -> tuple[frozenset[str], dict[str, str]]:
        return await self.expand(principals, fresh=fresh), {}

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


# -- what a hostile review found (each was reproduced before it was fixed) ---------------------
class FailingMembers(Members):
    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def resolve(
        self, principals: list[str], *, fresh: bool = False
    ) -> tuple[frozenset[str], dict[str, str]]:
        if fresh:
            raise self.error
        return await super().resolve(principals)


async def test_a_claim_lost_in_a_failover_promises_nothing_and_runs_once_later(
    redis: RedisClient,
) -> None:
    """A failover drops the claim (the request is approved again): this executor must not
    tell anyone "Nothing was changed" — the sweeper runs the request later, once."""
    clock = ManualClock()
    notifier = Notifier()
    flow = make_flow(redis, clock, notifier, timedelta(seconds=30))
    name = "failover"
    world = WORLD[name] = World()
    world.pause.set()
    submitted = await flow.submit(TwoStepAction(env="production", world=name), "U0ALICE", "C0OPS")
    key = f"dhanam:{{req:{submitted.request.id}}}"

    async def failover(request: ApprovalRequest) -> None:
        await redis.hset(key, "state", "approved")
        await redis.hdel(key, "lease_token")

    original = notifier.update_card

    async def update_card(request: ApprovalRequest) -> None:
        if request.state is State.EXECUTING and not world.mutations:
            await failover(request)
        await original(request)

    notifier.update_card = update_card  # type: ignore[method-assign]
    await flow.approve(submitted.request.id, "U0BOB")
    await flow.drain()
    assert world.mutations == []
    assert not any("nothing was changed" in text.lower() for _, text in notifier.told)
    notifier.update_card = original  # type: ignore[method-assign]
    clock.advance(31)
    await flow.sweep_once()
    await flow.drain()
    assert [op for _, op in world.mutations] == ["RegisterTaskDefinition", "UpdateService"]
    stored = await flow.store.get(submitted.request.id)
    assert stored is not None
    assert stored.state is State.SUCCEEDED


async def test_an_unexpected_error_in_the_gate_ends_the_request_at_once(
    redis: RedisClient,
) -> None:
    """A network error reading a group (not a ChatOpsError) used to leave the request
    executing until the sweeper called it in doubt "while it ran"; nothing had run."""
    clock = ManualClock()
    notifier = Notifier()
    flow = make_flow(redis, clock, notifier, timedelta(seconds=30))
    flow.members = FailingMembers(TimeoutError())
    name = "gate-error"
    world = WORLD[name] = World()
    world.pause.set()
    submitted = await flow.submit(TwoStepAction(env="production", world=name), "U0ALICE", "C0OPS")
    await flow.approve(submitted.request.id, "U0BOB")
    await flow.drain()
    stored = await flow.store.get(submitted.request.id)
    assert stored is not None
    assert stored.state is State.FAILED
    assert "unexpected error" in (stored.outcome or "")
    assert (stored.outcome or "").endswith("Nothing was changed.")
    assert world.mutations == []
    assert notifier.told
    assert notifier.told[-1][0] == "U0BOB"


async def test_a_store_blip_in_the_gate_is_said_once_and_named_for_what_it_is(
    redis: RedisClient,
) -> None:
    clock = ManualClock()
    notifier = Notifier()
    flow = make_flow(redis, clock, notifier, timedelta(seconds=30))
    locks = flow.locks
    calls = 0

    async def get_hold(scope: str) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:  # the gate's look (the first was the request's)
            raise StoreUnavailableError("TimeoutError")
        return await Locks.get_hold(locks, scope)

    locks.get_hold = get_hold  # type: ignore[method-assign]
    name = "blip"
    WORLD[name] = World()
    submitted = await flow.submit(TwoStepAction(env="production", world=name), "U0ALICE", "C0OPS")
    await flow.approve(submitted.request.id, "U0BOB")
    await flow.drain()
    told = notifier.told[-1][1]
    assert "approval store became unavailable" in told
    assert "could not be planned" not in told
    assert told.lower().count("nothing was changed") == 1


async def test_a_lost_execution_lock_stops_the_next_mutation(redis: RedisClient) -> None:
    """The one-at-a-time lock vanished (eviction, failover) mid-execution: the checkpoint sees
    it is no longer ours and the second step does not run beside another change."""
    clock = ManualClock()
    notifier = Notifier()
    flow = make_flow(redis, clock, notifier, timedelta(seconds=30))
    world, request = await approved(flow, "lock-lost")
    await redis.delete("dhanam:lease:exec:api:production")
    world.pause.set()
    await flow.drain()
    assert world.mutations == [(request.id, "RegisterTaskDefinition")]
    stored = await flow.store.get(request.id)
    assert stored is not None
    assert stored.state is State.FAILED
    assert "lost the one-at-a-time lock" in (stored.outcome or "")


async def test_a_deny_the_store_did_not_answer_promises_nothing(redis: RedisClient) -> None:
    clock = ManualClock()
    flow = make_flow(redis, clock, Notifier(), timedelta(seconds=30))
    name = "deny-blip"
    WORLD[name] = World()
    submitted = await flow.submit(TwoStepAction(env="production", world=name), "U0ALICE", "C0OPS")

    async def lost(*_args: object, **_kwargs: object) -> Any:
        raise StoreUnavailableError("ConnectionError: reset")

    flow.store.deny = lost  # type: ignore[method-assign]
    flow.store.cancel = lost  # type: ignore[method-assign]
    for click, user in ((flow.deny, "U0CAROL"), (flow.cancel, "U0ALICE")):
        with pytest.raises(StoreUnavailableError) as info:
            await click(submitted.request.id, user)
        assert "may or may not have been recorded" in info.value.user_message
        assert "nothing was changed" not in info.value.user_message.lower()
        assert info.value.nothing_changed is False


async def test_a_card_recorded_but_unconfirmed_promises_nothing(redis: RedisClient) -> None:
    """SET_CARD ran but its reply was lost and the store then stopped answering: the request
    may be open, so the reply does not say "Nothing was changed"."""
    clock = ManualClock()
    notifier = Notifier()
    flow = make_flow(redis, clock, notifier, timedelta(seconds=30))
    store = flow.store
    real_set_card = store.set_card

    async def set_card(request_id: str, channel: str, ts: str) -> Any:
        await real_set_card(request_id, channel, ts)
        raise StoreUnavailableError("ConnectionError: reply lost")

    async def abandon(*_args: object) -> Any:
        raise StoreUnavailableError("ConnectionError: down")

    real_abandon = store.abandon
    store.set_card = set_card  # type: ignore[method-assign]
    store.abandon = abandon  # type: ignore[method-assign]
    name = "unconfirmed"
    WORLD[name] = World()
    with pytest.raises(ChatOpsError) as info:
        await flow.submit(TwoStepAction(env="production", world=name), "U0ALICE", "C0OPS")
    assert "cannot tell whether the request was opened" in info.value.user_message
    assert info.value.nothing_changed is False
    # The store answers again: the bot's background attempt cancels the request.
    store.abandon = real_abandon  # type: ignore[method-assign]
    await flow.drain()
    stored = await flow.store.get(notifier.posted[-1])
    assert stored is not None
    assert stored.state is State.CANCELLED


async def test_an_unreadable_group_at_the_gate_is_named_not_blamed_on_the_approver(
    redis: RedisClient,
) -> None:
    class Slack:
        calls = 0

        async def usergroups_users_list(self, usergroup: str) -> dict[str, Any]:
            self.calls += 1
            if self.calls == 1:
                return {"ok": True, "users": ["U0DAVE"]}
            raise SlackApiError("ratelimited", {"ok": False, "error": "ratelimited"})

    clock = ManualClock()
    notifier = Notifier()
    flow = make_flow(redis, clock, notifier, timedelta(seconds=30))
    flow.members = GroupMembers(Slack(), clock, ttl=0)  # type: ignore[arg-type]
    name = "ratelimited"
    WORLD[name] = World()
    submitted = await flow.submit(TwoStepAction(env="production", world=name), "U0ALICE", "C0OPS")
    assert (await flow.approve(submitted.request.id, "U0DAVE")).refusal is None
    await flow.drain()
    told = notifier.told[-1][1]
    assert "could not be confirmed" in told
    assert "ratelimited" in told
    assert "no longer an approver" not in told
