"""The two-person rule end to end: signed clicks through POST /slack/events on two bot
replicas sharing one real redis-server, the Slack emulator showing the card."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from approvals.models import Action, Plan, Result, State
from bot.wiring import Overrides
from core.clock import ManualClock
from core.settings import LogFormat
from sandbox.slack_emulator import SlackEmulator
from sandbox.slack_emulator_models import EmuChannel, EmuUser, dhanam_world
from sandbox.world import EXAMPLE_CONFIG, SandboxWorld, buttons_of

EXECUTIONS: Counter[str] = Counter()
WORLD: dict[str, str] = {"revision": "3"}
MANY = [f"U0M{i:02d}" for i in range(50)]


class CountingAction(Action):
    """A risky action whose only effect is counting how often it ran."""

    kind: ClassVar[str] = "count"
    marker: str
    request_id: str | None = None

    @property
    def service(self) -> str | None:
        return "api"

    def title(self) -> str:
        return f"Count {self.marker}"

    async def plan(self, runtime: Any) -> Plan:
        revision = WORLD["revision"]
        return Plan.build(
            f"Count {self.marker} in {self.env}",
            inputs={"revision": revision},
            changes=[],
        )

    async def execute(self, plan: Plan, runtime: Any) -> Result:
        await asyncio.sleep(0.01)
        EXECUTIONS[self.marker] += 1
        return Result(ok=True, summary=f"counted {self.marker}")


def _emulator() -> SlackEmulator:
    users, channels, groups = dhanam_world()
    users += [EmuUser(uid, uid.lower(), f"Member {uid}") for uid in MANY]
    groups["S0MANY"] = list(MANY)
    everyone = [u.id for u in users]
    channels = [EmuChannel(c.id, c.name, members=everyone) for c in channels]
    return SlackEmulator("xoxb-sandbox", "T0DHANAM", users, channels, groups)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    text = EXAMPLE_CONFIG.read_text().replace(
        'approvers = ["U0BOB", "U0CAROL", "S0SRE"]',
        'approvers = ["U0BOB", "U0CAROL", "S0SRE", "S0MANY"]',
    )
    path = tmp_path / "dhanam.toml"
    path.write_text(text)
    return path


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def pair(
    redis_url: str, config_path: Path, clock: ManualClock
) -> AsyncIterator[SandboxWorld]:
    """Two bot replicas, one Redis, one Slack."""
    world = SandboxWorld(
        config_path=config_path,
        redis_url=redis_url,
        aws=False,
        log_format=LogFormat.JSON,
        replicas=2,
        overrides=Overrides(clock=clock, extra_actions=[CountingAction], sweeper=False),
        slack_factory=_emulator,
    )
    await world.start()
    yield world
    await world.stop()


async def _request(world: SandboxWorld, marker: str) -> Any:
    submitted = await world.flow(0).submit(
        CountingAction(env="production", marker=marker), "U0ALICE", "C0OPS"
    )
    return submitted.request


async def _drain(world: SandboxWorld) -> None:
    await world.settle()


def _card(world: SandboxWorld, request: Any) -> Any:
    found = next(m for m in world.slack.messages(request.channel) if m.ts == request.ts)
    return found.snapshot()  # the emulator edits messages in place


def _button(message: Any, label: str) -> Any:
    return next(b for b in buttons_of(message.blocks or []) if b.label == label)


async def test_card_shows_the_request(pair: SandboxWorld) -> None:
    request = await _request(pair, "card")
    assert request.channel == "C0DEPLOYS"  # the service's channel, not the command's
    card = _card(pair, request)
    text = str(card.blocks)
    assert "Count card in production" in text
    assert "<@U0ALICE>" in text
    assert "0 of 1" in text
    assert request.plan.short_fingerprint in text
    assert [b.label for b in buttons_of(card.blocks)] == ["Approve", "Deny", "Cancel"]
    assert _button(card, "Approve").confirm is not None


async def test_self_approval_is_refused_with_a_reason(pair: SandboxWorld) -> None:
    request = await _request(pair, "self")
    card = _card(pair, request)
    reply = await pair.click(card, _button(card, "Approve"), user="alice")
    assert reply.status == 200
    await _drain(pair)
    refusals = pair.slack.ephemerals("U0ALICE")
    assert "two-person rule" in refusals[-1].text
    assert (await pair.flow(0).store.get(request.id)).state is State.PENDING  # type: ignore[union-attr]
    assert EXECUTIONS["self"] == 0


async def test_non_approver_is_refused_and_told_who_can(pair: SandboxWorld) -> None:
    request = await _request(pair, "dave")
    card = _card(pair, request)
    await pair.click(card, _button(card, "Approve"), user="dave")
    await _drain(pair)
    text = pair.slack.ephemerals("U0DAVE")[-1].text
    assert "not an approver" in text
    assert "<@U0BOB>" in text
    assert "<!subteam^S0SRE>" in text


async def test_group_member_approves_and_it_runs_once(pair: SandboxWorld) -> None:
    request = await _request(pair, "group")
    card = _card(pair, request)
    await pair.click(card, _button(card, "Approve"), user="U0M07")
    await _drain(pair)
    stored = await pair.flow(0).store.get(request.id)
    assert stored is not None
    assert stored.state is State.SUCCEEDED
    assert stored.approvers == ["U0M07"]
    assert EXECUTIONS["group"] == 1
    final = _card(pair, stored)
    assert buttons_of(final.blocks) == []
    assert "Done" in str(final.blocks)
    assert "counted group" in str(final.blocks)  # the outcome is on the card, not copied
    thread = pair.slack.thread(stored.channel, stored.ts)  # type: ignore[arg-type]
    assert not any("counted group" in m.text for m in thread if m.is_reply)


async def test_deny_and_cancel_leave_no_working_buttons(pair: SandboxWorld) -> None:
    denied = await _request(pair, "deny")
    card = _card(pair, denied)
    await pair.click(card, _button(card, "Deny"), user="carol")
    await _drain(pair)
    assert buttons_of(_card(pair, denied).blocks) == []
    assert "Denied" in str(_card(pair, denied).blocks)
    # The old card's Approve button no longer does anything.
    await pair.click(card, _button(card, "Approve"), user="bob")
    await _drain(pair)
    assert "Already decided: denied" in pair.slack.ephemerals("U0BOB")[-1].text
    assert EXECUTIONS["deny"] == 0

    cancelled = await _request(pair, "cancel")
    card = _card(pair, cancelled)
    await pair.click(card, _button(card, "Cancel"), user="bob")
    await _drain(pair)
    assert "Only <@U0ALICE>, who asked, can cancel" in pair.slack.ephemerals("U0BOB")[-1].text
    await pair.click(card, _button(card, "Cancel"), user="alice")
    await _drain(pair)
    assert buttons_of(_card(pair, cancelled).blocks) == []
    assert "Cancelled" in str(_card(pair, cancelled).blocks)


async def test_expiry_edits_the_card_and_kills_the_buttons(
    pair: SandboxWorld, clock: ManualClock
) -> None:
    request = await _request(pair, "expire")
    card = _card(pair, request)
    clock.advance(901)
    assert await pair.flow(1).sweep_once() == 1
    assert "Expired" in str(_card(pair, request).blocks)
    assert buttons_of(_card(pair, request).blocks) == []
    await pair.click(card, _button(card, "Approve"), user="bob")
    await _drain(pair)
    assert "Already decided: expired" in pair.slack.ephemerals("U0BOB")[-1].text
    assert EXECUTIONS["expire"] == 0


async def test_n_of_m_needs_distinct_approvers(pair: SandboxWorld) -> None:
    flow = pair.flow(0)
    request = await _request(pair, "n-of-m")
    # Raise the bar on this request: as if approvals_required were 2.
    await flow.store._redis.hset(f"dhanam:{{req:{request.id}}}", "required", "2")
    card = _card(pair, request)
    await pair.click(card, _button(card, "Approve"), user="bob")
    await pair.click(card, _button(card, "Approve"), user="bob", replica=1)
    await _drain(pair)
    assert "already approved" in pair.slack.ephemerals("U0BOB")[-1].text
    assert "1 of 2" in str(_card(pair, request).blocks)
    assert EXECUTIONS["n-of-m"] == 0
    await pair.click(card, _button(card, "Approve"), user="carol", replica=1)
    await _drain(pair)
    assert EXECUTIONS["n-of-m"] == 1


async def test_drift_blocks_execution_and_says_what_changed(pair: SandboxWorld) -> None:
    WORLD["revision"] = "3"
    request = await _request(pair, "drift")
    WORLD["revision"] = "4"  # someone deployed meanwhile
    try:
        card = _card(pair, request)
        await pair.click(card, _button(card, "Approve"), user="bob")
        await _drain(pair)
    finally:
        WORLD["revision"] = "3"
    stored = await pair.flow(0).store.get(request.id)
    assert stored is not None
    assert stored.state is State.FAILED
    assert "plan changed" in (stored.outcome or "")
    assert "revision: 3 → 4" in (stored.outcome or "")
    assert "plan changed" in str(_card(pair, stored).blocks)
    assert EXECUTIONS["drift"] == 0


async def test_fifty_concurrent_clicks_on_two_replicas_run_once_twenty_times(
    pair: SandboxWorld,
) -> None:
    for round_ in range(20):
        marker = f"race-{round_}"
        request = await _request(pair, marker)
        card = _card(pair, request)
        approve = _button(card, "Approve")
        replies = await asyncio.gather(
            *(pair.click(card, approve, user=user, replica=i % 2) for i, user in enumerate(MANY))
        )
        assert all(r.status == 200 for r in replies)
        for _ in range(100):
            await _drain(pair)
            stored = await pair.flow(0).store.get(request.id)
            if stored is not None and stored.state.final:
                break
            await asyncio.sleep(0.02)
        assert stored is not None
        assert stored.state is State.SUCCEEDED, stored
        assert len(stored.approvals) == 1
        assert EXECUTIONS[marker] == 1, f"round {round_}: ran {EXECUTIONS[marker]} times"


async def test_audit_records_every_transition(pair: SandboxWorld) -> None:
    request = await _request(pair, "audited")
    card = _card(pair, request)
    await pair.click(card, _button(card, "Approve"), user="carol")
    await _drain(pair)
    entries = [
        e for e in await pair.flow(0).store.recent_audit(50) if e["request_id"] == request.id
    ]
    assert [e["event"] for e in reversed(entries)] == [
        "requested",
        "approved",
        "executing",
        "succeeded",
    ]
    assert all(e["fingerprint"] == request.plan.fingerprint for e in entries)
    assert entries[-2]["user"] == "U0CAROL"  # newest first: the approval is second oldest


async def test_crashed_executor_leaves_it_in_doubt_never_rerun(
    pair: SandboxWorld, clock: ManualClock
) -> None:
    from datetime import timedelta  # noqa: PLC0415

    request = await _request(pair, "crash")
    card = _card(pair, request)
    store = pair.flow(0).store
    # Approve without executing (as if the replica that won died right after the claim).
    await store.approve(request.id, "U0BOB", eligible_in=["production"])
    claim = await store.claim(request.id, "dead-replica", timedelta(seconds=30))
    assert claim.status.value == "claimed"
    clock.advance(31)
    assert await pair.flow(1).sweep_once() == 1
    await _drain(pair)
    stored = await store.get(request.id)
    assert stored is not None
    assert stored.state is State.IN_DOUBT
    assert "Outcome unknown — check status" in str(_card(pair, stored).blocks)
    thread = pair.slack.thread(stored.channel, stored.ts)  # type: ignore[arg-type]
    assert any("will not be retried" in m.text for m in thread)
    await pair.flow(0).execute(request.id)  # a late retry does nothing
    assert EXECUTIONS["crash"] == 0
    del card


async def test_sweeper_loop_expires_requests_under_its_lease(
    pair: SandboxWorld, clock: ManualClock
) -> None:
    request = await _request(pair, "sweeper-loop")
    clock.advance(901)
    stop = asyncio.Event()
    loops = [asyncio.create_task(pair.flow(i).run_sweeper(stop)) for i in range(2)]
    try:
        for _ in range(100):
            stored = await pair.flow(0).store.get(request.id)
            if stored is not None and stored.state is State.EXPIRED:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*loops)
    assert stored is not None
    assert stored.state is State.EXPIRED
    await _drain(pair)
    assert "Expired" in str(_card(pair, stored).blocks)
    events = [e["event"] for e in await pair.flow(0).store.events(request.id)]
    assert events.count("expired") == 1


async def test_approval_orphaned_by_a_dead_replica_runs_within_a_minute(
    pair: SandboxWorld, clock: ManualClock
) -> None:
    request = await _request(pair, "orphan")
    # The deciding click lands on a replica that dies before it can start the execution.
    outcome = await pair.flow(0).store.approve(request.id, "U0BOB", eligible_in=["production"])
    assert outcome.status.value == "approved"
    clock.advance(10)
    assert await pair.flow(1).sweep_once() == 0  # too early: the winner may still start it
    clock.advance(25)
    assert await pair.flow(1).sweep_once() == 1
    await _drain(pair)
    stored = await pair.flow(0).store.get(request.id)
    assert stored is not None
    assert stored.state is State.SUCCEEDED
    assert EXECUTIONS["orphan"] == 1
