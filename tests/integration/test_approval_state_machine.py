"""The approval engine as a hypothesis state machine, against a real redis-server.

Random sequences of submits, clicks (by requesters, approvers, non-approvers, twice),
concurrent clicks, spurious executions (a retry, a second replica), replicas that die after
deciding or after claiming, slow executions, plan drift, holds and the clock moving with the
sweeper running; after every step the safety properties are checked against Redis:

- nothing executes twice, and only with enough distinct, eligible, non-requester approvals;
- every state change recorded in a request's event list is one of ``TRANSITIONS``;
- a final state never changes; an in-doubt request never runs;
- a drifted plan never runs; a request that ran ends succeeded (failed only if it raised).

The engine is asyncio; each machine owns an event loop and runs every rule to completion on
it (background executions are drained unless a rule deliberately leaves one in flight).
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import secrets
from collections import Counter
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from approvals.flow import ActionRegistry, ApprovalFlow, Click
from approvals.locks import Locks
from approvals.models import Action, ApprovalRequest, Plan, Result, State
from approvals.store import ApprovalStore, Status, request_key
from core.clock import ManualClock
from core.config import Config, load_config
from core.errors import NotPermittedError
from integrations.redis_client import RedisClient, create_redis
from sandbox.redis_server import RedisServer
from tests.integration.machine_support import check_transitions

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "dhanam.example.toml"

ALICE, BOB, CAROL, DAVE, ERIN, FRANK = (
    "U0ALICE",
    "U0BOB",
    "U0CAROL",
    "U0DAVE",
    "U0ERIN",
    "U0FRANK",
)
SRE = {"S0SRE": frozenset({ERIN, FRANK})}  # the user group in the production approvers
ELIGIBLE = frozenset({BOB, CAROL, ERIN, FRANK})  # production approvers, group expanded
USERS = [ALICE, BOB, CAROL, DAVE, ERIN, FRANK]
MISSING_ID = "000000000000"
SCOPES = ["api:production", "web:production", "api:staging"]
LEASE = timedelta(seconds=30)

T = TypeVar("T")

# Set inside a deliberately slow execution: the action waits on this event before finishing.
SLOW_GATE: contextvars.ContextVar[asyncio.Event | None] = contextvars.ContextVar(
    "slow_gate", default=None
)


# -- the fakes --------------------------------------------------------------------------------
@dataclass
class Runtime:
    """What the flow hands to the Action: the machine's world and its records."""

    store: ApprovalStore
    revision: str = "1"  # the plan's only input; a rule changes it to simulate drift
    executions: Counter[str] = field(default_factory=Counter)
    # The stored request as CountingAction.execute found it on entry, per execution.
    entries: dict[str, list[ApprovalRequest | None]] = field(default_factory=dict)
    fingerprints: dict[str, list[str]] = field(default_factory=dict)  # re-planned, on entry
    at_gate: set[str] = field(default_factory=set)


class CountingAction(Action):
    """A risky action whose only effect is counting how often it ran (per request id)."""

    kind: ClassVar[str] = "count"
    marker: str
    svc: str = "api"
    explode: bool = False
    request_id: str | None = None  # set by Action.for_execution

    @property
    def service(self) -> str | None:
        return self.svc

    def title(self) -> str:
        return f"Count {self.marker}"

    async def plan(self, runtime: Any) -> Plan:
        return Plan.build(
            f"Count {self.marker} in {self.env}", inputs={"revision": runtime.revision}
        )

    async def execute(self, plan: Plan, runtime: Any) -> Result:
        rid = self.request_id or "?"
        runtime.executions[rid] += 1
        runtime.entries.setdefault(rid, []).append(await runtime.store.get(rid))
        runtime.fingerprints.setdefault(rid, []).append(plan.fingerprint)
        gate = SLOW_GATE.get()
        if gate is not None:
            runtime.at_gate.add(rid)
            await gate.wait()
        if self.explode:
            raise RuntimeError(f"{self.marker} exploded")
        return Result(ok=True, summary=f"counted {self.marker}")


class RecordingNotifier:
    def __init__(self) -> None:
        self.posted: list[str] = []
        self.updates: dict[str, list[ApprovalRequest]] = {}
        self.replies: list[tuple[str, str]] = []
        self._ts = 0

    async def post_card(self, request: ApprovalRequest) -> tuple[str, str]:
        self._ts += 1
        self.posted.append(request.id)
        return "C0DEPLOYS", f"1700000000.{self._ts:06d}"

    async def update_card(self, request: ApprovalRequest) -> None:
        self.updates.setdefault(request.id, []).append(request)

    async def thread_reply(self, request: ApprovalRequest, text: str) -> None:
        self.replies.append((request.id, text))

    async def tell(self, request: ApprovalRequest, user: str, text: str) -> None:
        self.replies.append((request.id, f"@{user}: {text}"))


class FixedMembers:
    async def resolve(
        self, principals: list[str], *, fresh: bool = False
    ) -> tuple[frozenset[str], dict[str, str]]:
        return await self.expand(principals, fresh=fresh), {}

    async def expand(self, principals: list[str], *, fresh: bool = False) -> frozenset[str]:
        users: set[str] = set()
        for principal in principals:
            users |= SRE.get(principal, {principal})
        return frozenset(users)


# -- the model ----------------------------------------------------------------------------------
@dataclass
class Model:
    """What the machine knows about one request independently of the engine."""

    id: str
    requester: str
    env: str
    required: int
    explode: bool
    revision: str  # the plan input when it was submitted
    approvals: set[str] = field(default_factory=set)  # who clicks say got in
    final: State | None = None  # the first final state observed


def predict_click(
    op: str, before: ApprovalRequest | None, user: str, now: datetime, eligible: bool
) -> Status:
    """What the transition scripts must answer, from the request as it was just before."""
    if before is None:
        return Status.MISSING
    if before.state is not State.PENDING:
        return Status.DECIDED
    if now >= before.expires_at:
        return Status.EXPIRED
    if op == "cancel":
        return Status.CANCELLED if user == before.requester else Status.NOT_REQUESTER
    if user == before.requester:
        return Status.SELF
    if not eligible:
        return Status.NOT_APPROVER
    if op == "deny":
        return Status.DENIED
    if user in before.approvers:
        return Status.DUPLICATE
    return Status.APPROVED if len(before.approvals) + 1 >= before.required else Status.RECORDED


class ApprovalMachine(RuleBasedStateMachine):
    redis_url: ClassVar[str] = ""
    config_path: ClassVar[Path] = EXAMPLE_CONFIG

    requests = Bundle("requests")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.redis: RedisClient = create_redis(self.redis_url)
        self.run(self.redis.flushall())
        self.clock = ManualClock()
        self.config: Config = load_config(self.config_path)
        self.store = ApprovalStore(self.redis, self.clock)
        self.runtime = Runtime(store=self.store)
        self.notifier = RecordingNotifier()
        registry = ActionRegistry()
        registry.add(CountingAction)
        self.flow = ApprovalFlow(
            config=self.config,
            store=self.store,
            locks=Locks(self.redis, self.clock),
            notifier=self.notifier,
            members=FixedMembers(),
            registry=registry,
            runtime=self.runtime,
            clock=self.clock,
            lease=LEASE,
        )
        self.models: dict[str, Model] = {}
        self.holds: set[str] = set()
        self.gates: dict[str, asyncio.Event] = {}
        self.slow: dict[str, asyncio.Task[None]] = {}
        self.markers = 0

    # -- plumbing ---------------------------------------------------------------------------
    def run(self, coro: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await coro

        return self.loop.run_until_complete(wrapped())

    def settle(self) -> None:
        self.run(self.flow.drain())

    def get(self, request_id: str) -> ApprovalRequest | None:
        return self.run(self.store.get(request_id))

    def teardown(self) -> None:
        try:
            for gate in self.gates.values():
                gate.set()
            if self.slow:
                self.run(asyncio.gather(*self.slow.values(), return_exceptions=True))
            self.settle()
            self.run(self.redis.aclose())
        finally:
            self.loop.close()

    # -- rules --------------------------------------------------------------------------------
    @rule(
        target=requests,
        requester=st.sampled_from(USERS),
        env=st.sampled_from(["production", "production", "production", "staging"]),
        svc=st.sampled_from(["api", "api", "web"]),
        break_glass=st.booleans(),
        explode=st.sampled_from([False, False, False, True]),
    )
    def submit(self, requester: str, env: str, svc: str, break_glass: bool, explode: bool) -> str:
        self.markers += 1
        action = CountingAction(
            env=env, marker=f"m{self.markers}", svc=svc, explode=explode, break_glass=break_glass
        )
        config = self.config.environments[env]
        required = config.approvals_required + (1 if break_glass else 0)
        refused = (f"{svc}:{env}" in self.holds and not break_glass) or (
            required > 0 and not config.approvers
        )
        try:
            submitted = self.run(self.flow.submit(action, requester, "C0OPS"))
        except NotPermittedError:
            assert refused, f"submit refused unexpectedly: {action!r} by {requester}"
            return MISSING_ID
        assert not refused, f"submit should have been refused: {action!r}"
        request = submitted.request
        assert request.required == required
        assert request.requester == requester
        assert request.state is (State.APPROVED if required == 0 else State.PENDING)
        assert submitted.runs_now is (required == 0)
        self.models[request.id] = Model(
            request.id, requester, env, required, explode, self.runtime.revision
        )
        self.settle()
        return request.id

    def _click(self, op: str, request_id: str, user: str, *, via_store: bool = False) -> None:
        before = self.get(request_id)
        eligible = before is not None and user in ELIGIBLE and before.env == "production"
        expected = predict_click(op, before, user, self.clock.now(), eligible)
        if via_store:  # the replica decided the click and died before doing anything else
            envs = self.run(self.flow.eligible_in(user))
            outcome = self.run(self.store.approve(request_id, user, eligible_in=envs))
            status = outcome.status
        else:
            method = {"approve": self.flow.approve, "deny": self.flow.deny}.get(op)
            click: Click = self.run(
                method(request_id, user) if method else self.flow.cancel(request_id, user)
            )
            status = click.status
            assert (click.refusal is None) == (
                status in (Status.RECORDED, Status.APPROVED, Status.DENIED, Status.CANCELLED)
            )
        assert status is expected, f"{op} by {user} on {before!r}: {status} != {expected}"
        self._note(request_id, user, status)
        self.settle()
        if status is Status.APPROVED and not via_store:
            after = self.get(request_id)
            assert after is not None
            assert after.state.final, f"approved and drained but {after.state}"

    def _note(self, request_id: str, user: str, status: Status) -> None:
        if status in (Status.RECORDED, Status.APPROVED) and request_id in self.models:
            self.models[request_id].approvals.add(user)

    @rule(request_id=st.one_of(requests, st.just(MISSING_ID)), user=st.sampled_from(USERS))
    def approve(self, request_id: str, user: str) -> None:
        self._click("approve", request_id, user)

    @rule(
        request_id=requests,
        user=st.sampled_from([BOB, CAROL, ERIN, FRANK, *USERS]),
        claimed=st.booleans(),
    )
    def approve_and_die(self, request_id: str, user: str, claimed: bool) -> None:
        """A replica runs the approval script and dies before spawning the execution (or,
        with ``claimed``, right after claiming it)."""
        self._click("approve", request_id, user, via_store=True)
        if claimed:
            self.replica_crash(request_id)

    @rule(request_id=requests, user=st.sampled_from(USERS))
    def deny(self, request_id: str, user: str) -> None:
        self._click("deny", request_id, user)

    @rule(request_id=requests, data=st.data())
    def cancel(self, request_id: str, data: st.DataObject) -> None:
        model = self.models.get(request_id)
        owner = [model.requester] if model else []
        user = data.draw(st.sampled_from([*owner, *owner, *USERS]), label="canceller")
        self._click("cancel", request_id, user)

    @rule(
        request_id=requests,
        ops=st.lists(
            st.tuples(
                st.sampled_from(["approve", "approve", "approve", "deny", "cancel", "execute"]),
                st.sampled_from(USERS),
            ),
            min_size=2,
            max_size=8,
        ),
    )
    def concurrent_clicks(self, request_id: str, ops: list[tuple[str, str]]) -> None:
        """Clicks (and executions) on one request at once, as from several replicas."""
        calls: list[Coroutine[Any, Any, Any]] = []
        for op, user in ops:
            if op == "approve":
                calls.append(self.flow.approve(request_id, user))
            elif op == "deny":
                calls.append(self.flow.deny(request_id, user))
            elif op == "cancel":
                calls.append(self.flow.cancel(request_id, user))
            else:
                calls.append(self.flow.execute(request_id))

        async def together() -> list[Any]:
            return list(await asyncio.gather(*calls))

        results = self.run(together())
        decisive = [
            r.status
            for r in results
            if isinstance(r, Click)
            and r.status in (Status.APPROVED, Status.DENIED, Status.CANCELLED, Status.EXPIRED)
        ]
        assert len(decisive) <= 1, f"more than one click decided {request_id}: {decisive}"
        for (op, user), result in zip(ops, results, strict=True):
            if op == "approve":
                self._note(request_id, user, result.status)
        self.settle()

    # Small steps matter as much as big ones: the lease is 30 s, orphans wait 30 s, the
    # sweeper looks again 5 s later, a request expires after 900 s.
    @rule(seconds=st.one_of(st.integers(0, 45), st.integers(0, 1000)))
    def advance_and_sweep(self, seconds: int) -> None:
        self.clock.advance(seconds)
        self.run(self.flow.sweep_once())
        self.settle()
        now = self.clock.now()
        for request_id in self.models:
            request = self.get(request_id)
            assert request is not None
            if request.state is State.PENDING:
                assert now < request.expires_at, f"swept but still pending: {request!r}"
            elif request.state is State.EXECUTING:
                lease_until = self.run(self.redis.hget(request_key(request_id), "lease_until"))
                lapsed = now.timestamp() * 1000 - int(lease_until or 0)
                assert lapsed <= 5000, f"lease lapsed {lapsed} ms ago, not in doubt: {request!r}"
            elif request.state is State.APPROVED:
                last = max((a.at for a in request.approvals), default=request.created_at)
                assert not (now >= request.expires_at and now - last > timedelta(seconds=35)), (
                    f"an orphan was not picked up: {request!r}"
                )

    @rule(request_id=st.one_of(requests, st.just(MISSING_ID)))
    def spurious_execute(self, request_id: str) -> None:
        """flow.execute for any id at any time: a retry, or a second replica."""
        before = self.get(request_id)
        ran = self.runtime.executions[request_id]
        self.run(self.flow.execute(request_id))
        self.settle()
        after = self.get(request_id)
        if before is None:
            assert after is None
        elif before.state is State.APPROVED:
            assert after is not None
            assert after.state.final or request_id in self.slow, after
        else:
            assert after is not None
            assert after.state is before.state, f"execute moved {before.state} to {after.state}"
            assert self.runtime.executions[request_id] == ran

    @rule(request_id=requests)
    def replica_crash(self, request_id: str) -> None:
        """Claim with a random token and never finish: the replica died mid-execution."""
        before = self.get(request_id)
        outcome = self.run(self.store.claim(request_id, secrets.token_hex(8), LEASE))
        if before is None:
            assert outcome.status is Status.MISSING
        elif before.state is State.APPROVED:
            assert outcome.status is Status.CLAIMED
            assert outcome.request is not None
            assert outcome.request.state is State.EXECUTING
        else:
            assert outcome.status is Status.DECIDED
            assert outcome.request is not None
            assert outcome.request.state is before.state

    @rule(request_id=requests)
    def start_slow_execution(self, request_id: str) -> None:
        """A replica starts executing and stalls inside the action (until released)."""
        before = self.get(request_id)
        if request_id in self.slow or before is None or before.state is not State.APPROVED:
            return
        gate = asyncio.Event()

        async def slow() -> None:
            SLOW_GATE.set(gate)
            await self.flow.execute(request_id)

        task = self.loop.create_task(slow())
        self.gates[request_id] = gate
        self.slow[request_id] = task
        for _ in range(1000):
            if request_id in self.runtime.at_gate or task.done():
                break
            self.run(asyncio.sleep(0.001))
        assert request_id in self.runtime.at_gate or task.done(), "the slow execution stuck"

    @rule(request_id=requests, seconds=st.one_of(st.integers(31, 45), st.integers(31, 1000)))
    def stall_past_the_lease(self, request_id: str, seconds: int) -> None:
        """An execution stalls in the action past its lease; the sweeper marks the request in
        doubt; then the action returns: its outcome is kept as a late report, nothing more."""
        self.start_slow_execution(request_id)
        task = self.slow.get(request_id)
        if task is None or task.done() or request_id not in self.runtime.at_gate:
            return
        self.advance_and_sweep(seconds)
        request = self.get(request_id)
        assert request is not None
        assert request.state is State.IN_DOUBT, request
        self.release_slow_executions()
        late = self.run(self.redis.hget(request_key(request_id), "late_outcome"))
        assert late, "the late outcome was not kept"
        assert self.runtime.executions[request_id] == 1

    @rule()
    def release_slow_executions(self) -> None:
        if not self.slow:
            return
        for gate in self.gates.values():
            gate.set()
        self.run(asyncio.gather(*self.slow.values()))
        self.gates.clear()
        self.slow.clear()
        self.runtime.at_gate.clear()
        self.settle()

    @rule(revision=st.sampled_from(["1", "2", "3"]))
    def drift(self, revision: str) -> None:
        """The world moves under the plan (someone deployed meanwhile)."""
        self.runtime.revision = revision

    @rule(scope=st.sampled_from(SCOPES))
    def toggle_hold(self, scope: str) -> None:
        locks = self.flow.locks
        if scope in self.holds:
            assert self.run(locks.release_hold(scope)) is not None
            self.holds.discard(scope)
        else:
            assert self.run(locks.hold(scope, "maintenance", BOB)) is None
            self.holds.add(scope)

    # -- invariants -----------------------------------------------------------------------------
    @invariant()
    def safety(self) -> None:
        for request_id, model in self.models.items():
            request = self.get(request_id)
            assert request is not None, f"{request_id} vanished"
            events = self.run(self.store.events(request_id))
            self._check_events(request, events)
            self._check_execution(model, request)
            if model.final is not None:
                assert request.state is model.final, (
                    f"{request_id} left final state {model.final} for {request.state}"
                )
            elif request.state.final:
                model.final = request.state
        stray = set(self.runtime.executions) - set(self.models)
        assert not stray, f"executions of unknown requests: {stray}"

    def _check_events(self, request: ApprovalRequest, events: list[dict[str, Any]]) -> None:
        assert request.state in set(State)
        check_transitions(request, events)
        approvals_logged = [e["user"] for e in events if e["event"] == "approval"]
        if request.state is not State.PENDING and request.approvals:
            # the deciding approval is logged as the `approved` move itself
            deciding = [e["user"] for e in events if e["event"] == "approved"]
            approvals_logged += deciding
        assert sorted(approvals_logged) == sorted(request.approvers), (events, request.approvers)

    def _check_execution(self, model: Model, request: ApprovalRequest) -> None:
        runs = self.runtime.executions[request.id]
        approvers = request.approvers
        assert len(approvers) == len(set(approvers)), f"duplicate approvals: {approvers}"
        assert set(approvers) == model.approvals, (approvers, model.approvals)
        assert request.requester not in approvers
        assert request.required == model.required
        assert runs <= 1, f"{request.id} executed {runs} times"
        outcome = request.outcome or ""
        if "plan changed" in outcome:
            assert runs == 0, f"drifted but executed: {request!r}"
        if request.state is State.SUCCEEDED:
            assert runs == 1, f"succeeded without executing: {request!r}"
        if request.state is State.FAILED and runs == 1:
            assert model.explode, f"executed, did not raise, yet failed: {request!r}"
        if runs == 0:
            return
        assert len(set(approvers)) >= model.required, f"executed with {approvers}"
        if request.env == "production":
            assert set(approvers) <= ELIGIBLE
        else:
            assert not approvers
        allowed = {State.SUCCEEDED, State.FAILED, State.IN_DOUBT}
        if request.id in self.slow:
            allowed.add(State.EXECUTING)
        assert request.state in allowed, f"executed but {request.state}"
        if request.state is State.SUCCEEDED:
            assert not model.explode
        for seen in self.runtime.entries[request.id]:
            assert seen is not None
            assert seen.state is State.EXECUTING, f"the action ran in state {seen.state}"
            assert len(set(seen.approvers)) >= model.required
            assert model.requester not in seen.approvers
        for printed in self.runtime.fingerprints[request.id]:
            assert printed == request.plan.fingerprint, "ran a plan other than the approved one"

    @invariant()
    def cards_show_final_states(self) -> None:
        """Once a request is final and nothing runs, its card's last edit shows that state."""
        if self.slow:
            return
        for request_id, model in self.models.items():
            if model.final is None:
                continue
            edits = self.notifier.updates.get(request_id)
            assert edits, f"{request_id} is {model.final} but its card was never edited"
            assert edits[-1].state is model.final, (
                f"card shows {edits[-1].state}, request is {model.final}"
            )


# CI runs a bounded profile (100 examples of up to 50 steps, for each approvals_required);
# `make fuzz` (DHANAM_FUZZ=1) the deep one: 500 examples of up to 60 steps.
FUZZ = os.environ.get("DHANAM_FUZZ") == "1"
SETTINGS = settings(
    max_examples=500 if FUZZ else 100,
    stateful_step_count=60 if FUZZ else 50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.timeout(3600 if FUZZ else 120)
@pytest.mark.parametrize("required", [1, 2])
def test_approval_state_machine(redis_server: RedisServer, tmp_path: Path, required: int) -> None:
    if not redis_server.is_running:
        redis_server.restart()
    path = EXAMPLE_CONFIG
    if required != 1:
        path = tmp_path / "dhanam.toml"
        text = EXAMPLE_CONFIG.read_text()
        old = "approvals_required = 1 "
        assert old in text
        path.write_text(text.replace(old, f"approvals_required = {required} ", 1))
    machine = type(
        f"ApprovalMachineRequired{required}",
        (ApprovalMachine,),
        {"redis_url": redis_server.url, "config_path": path},
    )
    run_state_machine_as_test(machine, settings=SETTINGS)
