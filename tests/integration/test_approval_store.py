"""The Redis store against a real redis-server: every transition, its refusals, and races."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from redis.asyncio import Redis

from approvals.models import ApprovalRequest, Plan, State
from approvals.store import ApprovalStore, Status, new_request_id, request_key
from core.clock import ManualClock, SystemClock
from core.errors import StoreUnavailableError
from integrations.redis_client import create_redis
from sandbox.redis_server import RedisServer


def make_request(
    clock: ManualClock, *, required: int = 1, ttl: int = 900, state: State = State.PENDING
) -> ApprovalRequest:
    now = clock.now()
    return ApprovalRequest(
        id=new_request_id(),
        kind="deploy",
        action={"kind": "deploy", "service": "api", "env": "production", "tag": "v1.3.0"},
        plan=Plan.build("Deploy api", inputs={"taskdef": "arn:1"}),
        requester="U0ALICE",
        env="production",
        service="api",
        required=required,
        state=state,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl),
    )


@pytest.fixture
async def redis(redis_url: str):  # type: ignore[no-untyped-def]
    client = create_redis(redis_url)  # the production client, with its reconnect policy
    yield client
    await client.aclose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(redis: Redis, clock: ManualClock) -> ApprovalStore:
    return ApprovalStore(redis, clock)


async def test_create_and_read_back(store: ApprovalStore, clock: ManualClock) -> None:
    request = make_request(clock)
    await store.create(request)
    loaded = await store.get(request.id)
    assert loaded == request
    assert await store.get("nope") is None
    assert [e["event"] for e in await store.events(request.id)] == ["created"]


async def test_self_approval_is_refused(store: ApprovalStore, clock: ManualClock) -> None:
    request = make_request(clock)
    await store.create(request)
    outcome = await store.approve(request.id, "U0ALICE", eligible_in=["production"])
    assert outcome.status is Status.SELF
    assert outcome.request is not None
    assert outcome.request.state is State.PENDING
    assert outcome.request.approvals == []


async def test_non_approver_is_refused(store: ApprovalStore, clock: ManualClock) -> None:
    request = make_request(clock)
    await store.create(request)
    outcome = await store.approve(request.id, "U0DAVE", eligible_in=["staging"])
    assert outcome.status is Status.NOT_APPROVER
    assert outcome.request is not None
    assert outcome.request.state is State.PENDING


async def test_n_of_m_counts_distinct_approvers(store: ApprovalStore, clock: ManualClock) -> None:
    request = make_request(clock, required=2)
    await store.create(request)
    first = await store.approve(request.id, "U0BOB", eligible_in=["production"])
    assert first.status is Status.RECORDED
    again = await store.approve(request.id, "U0BOB", eligible_in=["production"])
    assert again.status is Status.DUPLICATE
    assert again.request is not None
    assert again.request.approvers == ["U0BOB"]
    second = await store.approve(request.id, "U0CAROL", eligible_in=["production"])
    assert second.status is Status.APPROVED
    assert second.request is not None
    assert second.request.state is State.APPROVED
    assert second.request.approvers == ["U0BOB", "U0CAROL"]
    assert second.request.decided_by == "U0CAROL"
    late = await store.approve(request.id, "U0ERIN", eligible_in=["production"])
    assert late.status is Status.DECIDED


async def test_deny_and_cancel_end_the_request(store: ApprovalStore, clock: ManualClock) -> None:
    denied = make_request(clock)
    await store.create(denied)
    assert (
        await store.deny(denied.id, "U0ALICE", eligible_in=["production"], note="x")
    ).status is Status.SELF
    assert (
        await store.deny(denied.id, "U0DAVE", eligible_in=["staging"], note="x")
    ).status is Status.NOT_APPROVER
    outcome = await store.deny(
        denied.id, "U0BOB", eligible_in=["production"], note="not during the sale"
    )
    assert outcome.status is Status.DENIED
    assert outcome.request is not None
    assert outcome.request.outcome == "not during the sale"
    assert (
        await store.approve(denied.id, "U0CAROL", eligible_in=["production"])
    ).status is Status.DECIDED

    cancelled = make_request(clock)
    await store.create(cancelled)
    assert (await store.cancel(cancelled.id, "U0BOB")).status is Status.NOT_REQUESTER
    outcome = await store.cancel(cancelled.id, "U0ALICE")
    assert outcome.status is Status.CANCELLED
    assert (
        await store.approve(cancelled.id, "U0BOB", eligible_in=["production"])
    ).status is Status.DECIDED


async def test_expiry_on_click_and_by_sweep(store: ApprovalStore, clock: ManualClock) -> None:
    clicked = make_request(clock, ttl=60)
    swept = make_request(clock, ttl=60)
    await store.create(clicked)
    await store.create(swept)
    assert await store.due() == []
    clock.advance(61)
    outcome = await store.approve(clicked.id, "U0BOB", eligible_in=["production"])
    assert outcome.status is Status.EXPIRED
    assert outcome.request is not None
    assert outcome.request.state is State.EXPIRED
    assert set(await store.due()) == {clicked.id, swept.id}
    assert (await store.sweep_one(swept.id)).status is Status.EXPIRED
    assert (await store.sweep_one(clicked.id)).status is Status.FINAL
    assert await store.due() == []
    assert (
        await store.approve(swept.id, "U0BOB", eligible_in=["production"])
    ).status is Status.DECIDED


async def test_claim_happens_once(store: ApprovalStore, clock: ManualClock) -> None:
    request = make_request(clock)
    await store.create(request)
    await store.approve(request.id, "U0BOB", eligible_in=["production"])
    outcomes = await asyncio.gather(
        *(store.claim(request.id, f"t{i}", timedelta(seconds=30)) for i in range(20))
    )
    assert [o.status for o in outcomes].count(Status.CLAIMED) == 1


async def test_claim_needs_approval(store: ApprovalStore, clock: ManualClock) -> None:
    request = make_request(clock)
    await store.create(request)
    assert (await store.claim(request.id, "t", timedelta(seconds=30))).status is Status.DECIDED


async def test_finish_by_the_lease_holder_only(store: ApprovalStore, clock: ManualClock) -> None:
    request = make_request(clock)
    await store.create(request)
    await store.approve(request.id, "U0BOB", eligible_in=["production"])
    await store.claim(request.id, "mine", timedelta(seconds=30))
    assert (await store.finish(request.id, "theirs", ok=True, outcome="x")).status is Status.LOST
    done = await store.finish(request.id, "mine", ok=True, outcome="deployed rev 4")
    assert done.status is Status.SUCCEEDED
    assert done.request is not None
    assert done.request.state is State.SUCCEEDED
    assert done.request.outcome == "deployed rev 4"
    events = [e["event"] for e in await store.events(request.id)]
    assert events == ["created", "approved", "executing", "succeeded"]


async def test_lapsed_lease_means_in_doubt_never_rerun(
    store: ApprovalStore, clock: ManualClock
) -> None:
    request = make_request(clock)
    await store.create(request)
    await store.approve(request.id, "U0BOB", eligible_in=["production"])
    await store.claim(request.id, "mine", timedelta(seconds=30))
    clock.advance(10)
    assert (await store.extend(request.id, "mine", timedelta(seconds=30))).status is Status.EXTENDED
    clock.advance(29)
    assert (await store.sweep_one(request.id)).status is Status.WAIT
    clock.advance(2)
    doubt = await store.sweep_one(request.id)
    assert doubt.status is Status.IN_DOUBT
    assert doubt.request is not None
    assert doubt.request.outcome == "outcome unknown — check status"
    assert (await store.claim(request.id, "again", timedelta(seconds=30))).status is Status.DECIDED
    late = await store.finish(request.id, "mine", ok=True, outcome="deployed")
    assert late.status is Status.LATE
    assert late.request is not None
    assert late.request.state is State.IN_DOUBT
    assert (await store.extend(request.id, "mine", timedelta(seconds=30))).status is Status.LOST


async def test_orphaned_approval_is_offered_to_the_sweeper(
    store: ApprovalStore, clock: ManualClock
) -> None:
    request = make_request(clock)
    await store.create(request)
    await store.approve(request.id, "U0BOB", eligible_in=["production"])
    assert (await store.sweep_one(request.id)).status is Status.WAIT
    clock.advance(31)
    assert (await store.sweep_one(request.id)).status is Status.ORPHAN


async def test_leases_are_exclusive_and_released_by_token(store: ApprovalStore) -> None:
    async with store.lease("sweeper", timedelta(seconds=5)) as first:
        assert first is not None
        async with store.lease("sweeper", timedelta(seconds=5)) as second:
            assert second is None
        assert not await store.release("sweeper", "not-the-token")
    async with store.lease("sweeper", timedelta(seconds=5)) as third:
        assert third is not None


async def test_audit_stream(store: ApprovalStore) -> None:
    for i in range(5):
        await store.audit({"event": "approved", "n": str(i)})
    recent = await store.recent_audit(3)
    assert [e["n"] for e in recent] == ["4", "3", "2"]


async def test_request_survives_a_redis_restart_with_aof(
    store: ApprovalStore, clock: ManualClock, redis_server: RedisServer
) -> None:
    request = make_request(clock)
    await store.create(request)
    await asyncio.to_thread(redis_server.kill)
    await asyncio.to_thread(redis_server.restart)
    outcome = await store.approve(request.id, "U0BOB", eligible_in=["production"])
    assert outcome.status is Status.APPROVED


async def test_redis_down_fails_closed(
    store: ApprovalStore, clock: ManualClock, redis_server: RedisServer
) -> None:
    request = make_request(clock)
    await store.create(request)
    await asyncio.to_thread(redis_server.shutdown)
    with pytest.raises(StoreUnavailableError) as info:
        await store.approve(request.id, "U0BOB", eligible_in=["production"])
    assert info.value.user_message == "approval store unavailable — nothing was changed"
    await asyncio.to_thread(redis_server.restart)


async def test_a_new_request_is_opened_only_by_recording_its_card(
    store: ApprovalStore, clock: ManualClock
) -> None:
    request = make_request(clock, state=State.NEW)
    await store.create(request)
    for click in (
        store.approve(request.id, "U0BOB", eligible_in=["production"]),
        store.deny(request.id, "U0BOB", eligible_in=["production"], note="x"),
        store.cancel(request.id, "U0ALICE"),
    ):
        assert (await click).status is Status.NOT_READY
    assert (await store.claim(request.id, "t", timedelta(seconds=30))).status is Status.DECIDED
    clock.advance(120)
    assert (await store.sweep_one(request.id)).status is Status.WAIT  # never an orphan
    opened = await store.set_card(request.id, "C0DEPLOYS", "1.0")
    assert opened.status is Status.OK
    assert opened.request is not None
    assert opened.request.state is State.PENDING
    again = await store.set_card(request.id, "C0DEPLOYS", "1.0")  # a retried call
    assert again.request is not None
    assert again.request.state is State.PENDING
    assert (await store.approve(request.id, "U0BOB", eligible_in=["production"])).status is (
        Status.APPROVED
    )


async def test_no_approval_needed_is_approved_by_recording_the_card_only(
    store: ApprovalStore, clock: ManualClock
) -> None:
    request = make_request(clock, required=0, state=State.NEW)
    await store.create(request)
    clock.advance(60)
    assert (await store.sweep_one(request.id)).status is Status.WAIT
    opened = await store.set_card(request.id, "C0OPS", "2.0")
    assert opened.status is Status.APPROVED
    assert opened.request is not None
    assert opened.request.state is State.APPROVED
    assert opened.request.approved_at is not None
    assert (await store.set_card(request.id, "C0OPS", "2.0")).status is Status.APPROVED
    events = [e["event"] for e in await store.events(request.id)]
    assert events == ["created", "approved"]


async def test_a_new_request_nobody_opened_expires(
    store: ApprovalStore, clock: ManualClock
) -> None:
    request = make_request(clock, required=0, state=State.NEW, ttl=60)
    await store.create(request)
    clock.advance(61)
    assert (await store.sweep_one(request.id)).status is Status.EXPIRED


@pytest.mark.parametrize("opened", ["new", "pending", "approved"])
async def test_abandon_cancels_anything_not_yet_claimed(
    store: ApprovalStore, clock: ManualClock, opened: str
) -> None:
    request = make_request(clock, state=State.NEW)
    await store.create(request)
    if opened != "new":
        await store.set_card(request.id, "C0DEPLOYS", "1.0")
    if opened == "approved":
        await store.approve(request.id, "U0BOB", eligible_in=["production"])
    ended = await store.abandon(request.id, "U0ALICE", "the card could not be posted")
    assert ended.status is Status.CANCELLED
    assert ended.request is not None
    assert ended.request.state is State.CANCELLED
    assert ended.request.outcome == "the card could not be posted"
    again = await store.abandon(request.id, "U0ALICE", "the card could not be posted")
    assert again.status is Status.CANCELLED
    assert (await store.claim(request.id, "t", timedelta(seconds=30))).status is Status.DECIDED
    assert request.id not in await store.active_ids()


async def test_abandon_never_touches_a_claimed_request(
    store: ApprovalStore, clock: ManualClock
) -> None:
    request = make_request(clock)
    await store.create(request)
    await store.approve(request.id, "U0BOB", eligible_in=["production"])
    await store.claim(request.id, "mine", timedelta(seconds=30))
    ended = await store.abandon(request.id, "U0ALICE", "late")
    assert ended.status is Status.DECIDED
    assert ended.request is not None
    assert ended.request.state is State.EXECUTING


class DriftingClock(SystemClock):
    """A replica whose clock runs an hour fast (and does not know it: no skew)."""

    def now(self) -> datetime:
        return super().now() + timedelta(hours=1)


async def test_leases_are_timed_by_redis_not_by_the_replica(redis: Redis) -> None:
    """The lease deadline the scripts write comes from Redis TIME: a replica whose clock is an
    hour fast gets a 30 s lease, not one that lasts an hour and thirty seconds."""
    drifting = DriftingClock()
    store = ApprovalStore(redis, drifting)
    request = make_request(drifting)  # type: ignore[arg-type]
    await store.create(request)
    await store.approve(request.id, "U0BOB", eligible_in=["production"])
    await store.claim(request.id, "mine", timedelta(seconds=30))
    seconds, micros = await redis.time()
    redis_ms = seconds * 1000 + micros // 1000
    lease_until = int(await redis.hget(request_key(request.id), "lease_until"))
    assert 29_000 <= lease_until - redis_ms <= 30_500
