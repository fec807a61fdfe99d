"""The whole approval flow as a hypothesis state machine: real redis-server, real moto server.

The action under test ("touch") makes two REAL AWS mutations through ``call_aws`` (so the
execution checkpoint of core/guard.py guards each): TagResource on the ECS service with
``dhanam:request=<id>``, then UpdateService with only desiredCount. A botocore hook on the
machine's ECS client records every mutation that reaches moto in a trail, together with a
snapshot of the MACHINE's own model at that moment (its record of locks, its freeze windows
at the manual clock's now, its config and group membership) and the request's hash as stored
in Redis (state, lease, approvals). The code under test decides none of the snapshot.

Interleaved: submits by requesters of both environments (break-glass sometimes), approve /
deny / cancel by eligible and ineligible users and by the requester, concurrent clicks, a
replica that decides and dies, another replica executing, `/dhanam lock` holds, the clock
moving into and out of freeze windows, config reloads that remove approvers or raise the
approvals required, users leaving a user group (the members fake honours ``fresh=True``),
Slack refusing a card post or card edits, Redis outages (the server really stops for one
step), Redis dying while a card is posted, a replica stalling between its two mutations past
its lease (the sweeper marks it in doubt), orphan pickup by the sweeper and plan drift.

Invariants, after every step:
1. No mutation reached moto unless the gate held by the machine's snapshot at that moment:
   the first mutation of a request needs every gate rule (state executing under a live lease,
   not expired, no lock and no freeze unless break-glass, enough eligible non-requester
   approvers under the current config and groups, the plan unchanged); each later one the
   checkpoint's rules (claim: executing under a live lease; no lock or freeze unless
   break-glass).
2. At most one mutation sequence per request: each operation at most once, one claim token.
3. Every reply that says "nothing was changed" is followed by no mutation for that request,
   ever: submit errors (ChatOpsError.nothing_changed, or the words in the text — the bot
   appends "Nothing was changed." to the first), click refusals, clicks during a Redis outage,
   request outcomes and the ephemeral messages of a refused execution. Outcomes, ephemeral
   messages and failed submits speak for the request's whole life: no mutation at all. Where a
   card was never recorded (Redis gone while it was posted) the request must never run.
4. Only allowed transitions; a final state never changes; the action never runs twice;
   approvals are exactly the clicks that were told they counted, never the requester's.

CI runs a bounded profile; ``DHANAM_FUZZ=1`` (``make fuzz``) a deep one.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import secrets
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from approvals.flow import ActionRegistry, ApprovalFlow, Click
from approvals.locks import Locks
from approvals.models import Action, ApprovalRequest, Plan, Result, State
from approvals.store import ApprovalStore, Status, request_key
from core.clock import ManualClock
from core.config import Config, EnvironmentConfig, load_config
from core.errors import ChatOpsError, NotPermittedError, StoreUnavailableError
from integrations.aws.clients import AwsClients
from integrations.aws.errors import call_aws, is_mutation
from integrations.redis_client import RedisClient, create_redis
from sandbox.aws_world import DhanamWorld
from sandbox.redis_server import RedisServer
from tests.integration.machine_support import check_transitions

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "dhanam.example.toml"
FUZZ = os.environ.get("DHANAM_FUZZ") == "1"

ALICE, BOB, CAROL, DAVE, ERIN, FRANK = (
    "U0ALICE",
    "U0BOB",
    "U0CAROL",
    "U0DAVE",
    "U0ERIN",
    "U0FRANK",
)
SRE = "S0SRE"
USERS = [ALICE, BOB, CAROL, DAVE, ERIN, FRANK]
CLICKERS = [BOB, CAROL, ERIN, FRANK, *USERS]  # approvers more often
ENVS = ["production", "production", "staging"]
SERVICES = ["api", "web"]
SCOPES = [f"{s}:{e}" for s in SERVICES for e in ("production", "staging")]
MISSING_ID = "000000000000"
LEASE = timedelta(seconds=30)
TTL = timedelta(seconds=900)
GRACE = timedelta(seconds=60)  # approvals/gate.py EXECUTE_GRACE, restated on purpose
START = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)  # ManualClock's default start
NOTHING = "nothing was changed"

# The machine's own freeze windows, written into its config file.
FREEZES: dict[str, list[tuple[datetime, datetime]]] = {
    "production": [
        (START + timedelta(minutes=5), START + timedelta(minutes=15)),
        (START + timedelta(minutes=45), START + timedelta(minutes=60)),
    ],
    "staging": [(START + timedelta(minutes=25), START + timedelta(minutes=35))],
}

# Config reloads: the production approvers and approvals_required after the reload.
RELOADS: list[tuple[tuple[str, ...], int]] = [
    ((BOB, CAROL, SRE), 1),  # as configured
    ((CAROL, SRE), 1),  # Bob removed
    ((BOB, SRE), 1),  # Carol removed
    ((BOB, CAROL), 1),  # the SRE group removed
    ((BOB, CAROL, SRE), 2),  # two approvals now
    ((CAROL, SRE), 2),
]

T = TypeVar("T")

# Set around a rule's call: the execution it starts parks between its two mutations.
PARK: contextvars.ContextVar[asyncio.Event | None] = contextvars.ContextVar("park", default=None)
# Set by TouchAction.execute: which request the AWS calls of this task belong to.
CURRENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("current", default=None)


def freeze_config(tmp_path: Path) -> Path:
    """The example config with the machine's freeze windows (and nothing else changed)."""

    def blocks(env: str) -> str:
        return "".join(
            f'\n[[environments.{env}.freeze]]\nstart = "{a:%Y-%m-%dT%H:%M:%SZ}"\n'
            f'end = "{b:%Y-%m-%dT%H:%M:%SZ}"\nreason = "freeze {i}"\n'
            for i, (a, b) in enumerate(FREEZES[env])
        )

    text = EXAMPLE_CONFIG.read_text()
    holiday = (
        '[[environments.production.freeze]]\nstart = "2026-12-24T00:00:00Z"\n'
        'end = "2026-12-27T00:00:00Z"\nreason = "Holiday freeze"\n'
    )
    assert holiday in text
    text = text.replace(holiday, blocks("production").lstrip("\n"))
    assert "\n[services.api]" in text
    text = text.replace("\n[services.api]", blocks("staging") + "\n[services.api]", 1)
    path = tmp_path / "dhanam-fuzz.toml"
    path.write_text(text)
    config = load_config(path)
    assert len(config.environments["production"].freeze) == len(FREEZES["production"])
    assert len(config.environments["staging"].freeze) == len(FREEZES["staging"])
    return path


# -- the world the action changes -------------------------------------------------------------
@dataclass
class World:
    """The runtime handed to the action: moto's ECS client and the machine's records."""

    ecs: Any
    revision: str = "1"  # a plan input the machine drifts
    executions: Counter[str] = field(default_factory=Counter)
    parked_rid: str | None = None
    parked_task: asyncio.Task[Any] | None = None
    park_event: asyncio.Event | None = None


def cluster_of(env: str) -> str:
    return f"dhanam-{env}"


def service_of(svc: str) -> str:
    return f"dhanam-{svc}"


class TouchAction(Action):
    """Tags the service with the request id, then sets its desiredCount (to what it is)."""

    kind: ClassVar[str] = "touch"
    svc: str = "api"

    @property
    def service(self) -> str | None:
        return self.svc

    def title(self) -> str:
        return f"Touch {self.svc} in {self.env}"

    async def _describe(self, world: World) -> dict[str, Any]:
        response = await call_aws(
            "DescribeServices",
            world.ecs.describe_services,
            cluster=cluster_of(self.env),
            services=[service_of(self.svc)],
        )
        found: dict[str, Any] = response["services"][0]
        return found

    async def plan(self, runtime: Any) -> Plan:
        found = await self._describe(runtime)
        return Plan.build(
            f"Touch {self.svc} in {self.env}",
            inputs={"task_definition": found["taskDefinition"], "revision": runtime.revision},
        )

    async def execute(self, plan: Plan, runtime: Any) -> Result:
        world: World = runtime
        rid = self.request_id or "?"
        world.executions[rid] += 1
        token = CURRENT.set(rid)
        try:
            found = await self._describe(world)
            await call_aws(
                "TagResource",
                world.ecs.tag_resource,
                resourceArn=found["serviceArn"],
                tags=[{"key": "dhanam:request", "value": rid}],
            )
            event = PARK.get()
            if event is not None and world.parked_rid is None:
                # A replica stalls here (a GC pause, a dying host) between its mutations.
                world.parked_rid = rid
                world.parked_task = asyncio.current_task()
                world.park_event = event
                await event.wait()
            await call_aws(
                "UpdateService",
                world.ecs.update_service,
                cluster=cluster_of(self.env),
                service=service_of(self.svc),
                desiredCount=found["desiredCount"],
            )
        finally:
            CURRENT.reset(token)
        return Result(ok=True, summary=f"touched {self.svc} in {self.env}")


# -- the fakes --------------------------------------------------------------------------------
class SlackRefused(Exception):  # noqa: N818 - named like slack_sdk's SlackApiError
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.response = {"ok": False, "error": error}


class FaultyNotifier:
    """Records everything; refuses the next post or every card edit when told to."""

    def __init__(self) -> None:
        self.posted: list[str] = []
        self.refuse_next_post = False
        self.updates_fail = False
        self.on_post: Any = None  # a fault to inject while the card is posted
        self.updates: dict[str, list[ApprovalRequest]] = {}
        self.replies: list[tuple[str, str]] = []
        self.tells: list[tuple[str, str, str]] = []
        self._ts = 0

    async def post_card(self, request: ApprovalRequest) -> tuple[str, str]:
        self.posted.append(request.id)
        if self.on_post is not None:
            self.on_post(request)
        if self.refuse_next_post:
            self.refuse_next_post = False
            raise SlackRefused("channel_not_found")
        self._ts += 1
        return "C0DEPLOYS", f"1700000000.{self._ts:06d}"

    async def update_card(self, request: ApprovalRequest) -> None:
        self.updates.setdefault(request.id, []).append(request)
        if self.updates_fail:
            raise SlackRefused("message_not_found")

    async def thread_reply(self, request: ApprovalRequest, text: str) -> None:
        self.replies.append((request.id, text))

    async def tell(self, request: ApprovalRequest, user: str, text: str) -> None:
        self.tells.append((request.id, user, text))


class GroupMembers:
    """User groups as the machine says they are (``truth``); reads without ``fresh`` see a
    cache refreshed only by fresh reads or the machine's cache-refresh rule."""

    def __init__(self, truth: dict[str, set[str]]) -> None:
        self.truth = truth
        self.cache = {k: set(v) for k, v in truth.items()}

    def refresh(self) -> None:
        self.cache = {k: set(v) for k, v in self.truth.items()}

    async def resolve(
        self, principals: list[str], *, fresh: bool = False
    ) -> tuple[frozenset[str], dict[str, str]]:
        return await self.expand(principals, fresh=fresh), {}

    async def expand(self, principals: list[str], *, fresh: bool = False) -> frozenset[str]:
        if fresh:
            self.refresh()
        users: set[str] = set()
        for principal in principals:
            users |= (
                self.cache.get(principal, {principal}) if principal.startswith("S") else {principal}
            )
        return frozenset(users)


# -- the model --------------------------------------------------------------------------------
@dataclass
class Model:
    """What the machine knows about one request, independently of the flow."""

    id: str
    requester: str
    env: str
    svc: str
    break_glass: bool
    required: int
    revision: str
    created_at: datetime
    approvals: set[str] = field(default_factory=set)
    approved_at: datetime | None = None
    final: State | None = None

    @property
    def scope(self) -> str:
        return f"{self.svc}:{self.env}"

    @property
    def expires_at(self) -> datetime:
        return self.created_at + TTL


@dataclass
class Mutation:
    """One AWS mutation that reached moto, with the machine's model at that moment."""

    rid: str | None
    op: str
    at: datetime
    holds: frozenset[str]
    approvers_now: dict[str, frozenset[str]]
    required_now: dict[str, int]
    revision: str
    stored: dict[str, str] | None
    error: str | None = None


@dataclass
class Promise:
    text: str
    after: int  # mutations for the request in the trail from this index on break it


class FlowMachine(RuleBasedStateMachine):
    redis_server: ClassVar[RedisServer]
    clients: ClassVar[AwsClients]
    config_path: ClassVar[Path]
    stats: ClassVar[Counter[str]]  # what the run explored, printed at the end of the test

    requests = Bundle("requests")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.server = self.redis_server
        if not self.server.is_running:
            self.server.restart()
        self.redis: RedisClient = create_redis(self.server.url)
        self.peek = redis.Redis.from_url(self.server.url, decode_responses=True, socket_timeout=2)
        self.run(self.redis.flushall())
        self.clock = ManualClock(START)
        self.base_config: Config = load_config(self.config_path)
        # The machine's own view of the config and the groups.
        self.prod_approvers: tuple[str, ...] = (BOB, CAROL, SRE)
        self.prod_required = 1
        self.groups: dict[str, set[str]] = {SRE: {ERIN, FRANK}}
        self.holds: set[str] = set()
        self.members = GroupMembers(self.groups)
        self.notifier = FaultyNotifier()
        self.store = ApprovalStore(self.redis, self.clock)
        self.ecs = self.clients.client("ecs")
        self.world = World(ecs=self.ecs)
        registry = ActionRegistry()
        registry.add(TouchAction)
        self.flow = ApprovalFlow(
            config=self.base_config,
            store=self.store,
            locks=Locks(self.redis, self.clock),
            notifier=self.notifier,
            members=self.members,
            registry=registry,
            runtime=self.world,
            clock=self.clock,
            lease=LEASE,
        )
        self.models: dict[str, Model] = {}
        self.trail: list[Mutation] = []
        self.trail_lock = threading.Lock()
        self.promises: dict[str, Promise] = {}
        self.card_faults = 0
        self.outages = 0
        self.card_faults_allowed = False
        self.never_run: set[str] = set()  # requests whose card was never recorded
        self.checked = 0  # trail entries already judged by invariant 1
        self.hook_id = f"dhanam-fuzz-{secrets.token_hex(4)}"
        self.ecs.meta.events.register("before-call.ecs", self._on_call, unique_id=self.hook_id)

    # -- plumbing ---------------------------------------------------------------------------
    def run(self, coro: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await coro

        return self.loop.run_until_complete(wrapped())

    def run_parked(self, coro: Awaitable[T], park: bool) -> T:
        """Run with PARK set (when asked and nothing is parked yet): the first execution it
        starts stalls between its two mutations until released."""
        event = asyncio.Event() if park and self.world.parked_rid is None else None

        async def wrapped() -> T:
            PARK.set(event)
            return await coro

        return self.loop.run_until_complete(wrapped())

    def settle(self) -> None:
        """Wait for background executions, except the one parked on purpose."""

        async def wait() -> None:
            for _ in range(3000):
                pending = [
                    t for t in self.flow._tasks if not t.done() and t is not self.world.parked_task
                ]
                if not pending:
                    return
                await asyncio.wait(pending, timeout=0.02)
            raise AssertionError("background executions did not finish")

        self.run(wait())

    def get(self, request_id: str) -> ApprovalRequest | None:
        return self.run(self.store.get(request_id))

    def promise(self, request_id: str | None, text: str, *, ever: bool) -> None:
        """``ever``: the reply speaks for the request's whole life (its execution's outcome,
        a submit that failed), so no mutation may be in the trail at all, not even before."""
        if request_id is None:
            return
        with self.trail_lock:
            after = 0 if ever else len(self.trail)
            known = self.promises.get(request_id)
            if known is None or after < known.after:
                self.promises[request_id] = Promise(text, after)

    def note_reply(self, request_id: str | None, text: str, *, ever: bool = False) -> None:
        if NOTHING in text.lower():
            self.promise(request_id, text, ever=ever)

    def env_config(self, env: str) -> EnvironmentConfig:
        return self.flow.config.environments[env]

    def approvers_now(self) -> dict[str, frozenset[str]]:
        """Each environment's approvers by the machine's own config and group truth."""
        out: dict[str, frozenset[str]] = {}
        for env, principals in (("production", self.prod_approvers), ("staging", ())):
            users: set[str] = set()
            for p in principals:
                users |= self.groups.get(p, set()) if p.startswith("S") else {p}
            out[env] = frozenset(users)
        return out

    def required_now(self) -> dict[str, int]:
        return {"production": self.prod_required, "staging": 0}

    def frozen(self, env: str, now: datetime) -> bool:
        return any(a <= now < b for a, b in FREEZES[env])

    def _on_call(self, model: Any, params: Any, **_: Any) -> None:
        """botocore's before-call, in the worker thread, for every ECS call of the machine."""
        if not is_mutation(model.name):
            return
        rid = CURRENT.get()
        stored: dict[str, str] | None = None
        error = None
        if rid is not None:
            try:
                stored = self.peek.hgetall(request_key(rid))  # type: ignore[assignment]
            except redis.RedisError as exc:
                error = f"{type(exc).__name__}: {exc}"
        entry = Mutation(
            rid=rid,
            op=model.name,
            at=self.clock.now(),
            holds=frozenset(self.holds),
            approvers_now=self.approvers_now(),
            required_now=self.required_now(),
            revision=self.world.revision,
            stored=stored,
            error=error,
        )
        with self.trail_lock:
            self.trail.append(entry)

    def restart_redis(self) -> None:
        if not self.server.is_running:
            self.server.restart()

    def _tally(self) -> None:
        stats = self.stats
        stats["examples"] += 1
        stats["requests"] += len(self.models)
        stats["mutations"] += len(self.trail)
        stats["promises"] += len(self.promises)
        for model in self.models.values():
            if model.final is not None:
                stats[f"final {model.final.value}"] += 1

    def teardown(self) -> None:
        self._tally()
        try:
            self.restart_redis()
            self.notifier.on_post = None
            if self.world.park_event is not None:
                self.world.park_event.set()
            self.settle()
            if self.world.parked_task is not None:
                self.run(asyncio.gather(self.world.parked_task, return_exceptions=True))
            self.settle()
            self.run(self.redis.aclose())
            self.peek.close()
        finally:
            self.ecs.meta.events.unregister("before-call.ecs", unique_id=self.hook_id)
            self.loop.close()

    # -- submit -----------------------------------------------------------------------------
    def _expect_refusal(self, env: str, svc: str, break_glass: bool) -> bool:
        blocked = f"{svc}:{env}" in self.holds or self.frozen(env, self.clock.now())
        required = self.required_now()[env] + (1 if break_glass else 0)
        no_approvers = required > 0 and not self.approvers_now()[env] and env == "staging"
        return (blocked and not break_glass) or no_approvers

    def _submit(
        self, requester: str, env: str, svc: str, break_glass: bool, park: bool
    ) -> tuple[str, str | None]:
        """Submit; returns (request id or MISSING_ID, the refusal text if refused)."""
        action = TouchAction(env=env, svc=svc, break_glass=break_glass, reason="fuzz")
        refused = self._expect_refusal(env, svc, break_glass)
        required = self.required_now()[env] + (1 if break_glass else 0)
        posted_before = len(self.notifier.posted)
        now = self.clock.now()
        revision = self.world.revision
        try:
            submitted = self.run_parked(self.flow.submit(action, requester, "C0OPS"), park)
        except NotPermittedError as exc:
            assert refused, f"submit refused unexpectedly: {exc.user_message}"
            assert len(self.notifier.posted) == posted_before, "refused but a card was posted"
            return MISSING_ID, exc.user_message
        except ChatOpsError as exc:
            # The card could not be posted or recorded: the request (if stored) ends unrun.
            assert not refused, f"should have been refused by policy: {exc.user_message}"
            text = exc.user_message
            rid = self.notifier.posted[-1] if len(self.notifier.posted) > posted_before else None
            if rid is not None:
                self._add_model(rid, requester, env, svc, break_glass, required, now, revision)
            assert text.lower().count(NOTHING) <= 1, f"said twice: {text!r}"
            if exc.nothing_changed or NOTHING in text.lower():
                # The reply says (or the bot appends) "Nothing was changed.": for ever.
                self.promise(rid, text, ever=True)
            if self.server.is_running:  # else the caller restarts Redis and settles
                self.settle()
            return rid or MISSING_ID, text
        assert not refused, f"should have been refused: {action!r} at {now}"
        request = submitted.request
        assert request.required == required, (request.required, required)
        assert request.state is (State.APPROVED if required == 0 else State.PENDING)
        model = self._add_model(
            request.id, requester, env, svc, break_glass, required, now, revision
        )
        if required == 0:
            model.approved_at = now
        self.settle()
        return request.id, None

    def _add_model(
        self,
        rid: str,
        requester: str,
        env: str,
        svc: str,
        break_glass: bool,
        required: int,
        now: datetime,
        revision: str,
    ) -> Model:
        model = Model(rid, requester, env, svc, break_glass, required, revision, now)
        self.models[rid] = model
        return model

    @rule(
        target=requests,
        requester=st.sampled_from(USERS),
        env=st.sampled_from(ENVS),
        svc=st.sampled_from(SERVICES),
        break_glass=st.sampled_from([False, False, True]),
        park=st.sampled_from([False, False, True]),
    )
    def submit(self, requester: str, env: str, svc: str, break_glass: bool, park: bool) -> str:
        rid, _ = self._submit(requester, env, svc, break_glass, park)
        return rid

    # Hypothesis picks rules uniformly: a second submit rule keeps requests coming.
    @rule(
        target=requests,
        requester=st.sampled_from(USERS),
        svc=st.sampled_from(SERVICES),
        break_glass=st.sampled_from([False, False, True]),
    )
    def submit_production(self, requester: str, svc: str, break_glass: bool) -> str:
        rid, _ = self._submit(requester, "production", svc, break_glass, False)
        return rid

    @rule(trouble=st.sampled_from(["refuse next post", "toggle card edits"]))
    def slack_trouble(self, trouble: str) -> None:
        """Slack refuses the next card post (channel_not_found), or every card edit."""
        if trouble == "refuse next post":
            self.notifier.refuse_next_post = True
        else:
            self.notifier.updates_fail = not self.notifier.updates_fail

    # -- clicks -----------------------------------------------------------------------------
    def _note_click(self, request_id: str, user: str, status: Status) -> None:
        model = self.models.get(request_id)
        if model is None:
            return
        if status in (Status.RECORDED, Status.APPROVED):
            model.approvals.add(user)
        if status is Status.APPROVED:
            model.approved_at = self.clock.now()

    def _click(self, op: str, request_id: str, user: str, park: bool = False) -> Click:
        calls = {"approve": self.flow.approve, "deny": self.flow.deny, "cancel": self.flow.cancel}
        click: Click = self.run_parked(calls[op](request_id, user), park)
        effective = (Status.RECORDED, Status.APPROVED, Status.DENIED, Status.CANCELLED)
        assert (click.refusal is None) == (click.status in effective), click
        self._note_click(request_id, user, click.status)
        if click.refusal is not None:
            self.note_reply(request_id, click.refusal.text)
        self.settle()
        return click

    @rule(
        request_id=st.one_of(requests, requests, st.just(MISSING_ID)),
        user=st.sampled_from(CLICKERS),
        park=st.sampled_from([False, False, True]),
    )
    def approve(self, request_id: str, user: str, park: bool) -> None:
        self._click("approve", request_id, user, park)

    @rule(
        request_id=requests,
        user=st.sampled_from([BOB, CAROL, ERIN, FRANK]),
        park=st.sampled_from([False, False, True]),
    )
    def approve_by_an_approver(self, request_id: str, user: str, park: bool) -> None:
        self._click("approve", request_id, user, park)

    @rule(request_id=requests, user=st.sampled_from(USERS))
    def deny(self, request_id: str, user: str) -> None:
        self._click("deny", request_id, user)

    @rule(request_id=requests, data=st.data())
    def cancel(self, request_id: str, data: st.DataObject) -> None:
        model = self.models.get(request_id)
        owner = [model.requester] * 2 if model else []
        user = data.draw(st.sampled_from([*owner, *USERS]), label="canceller")
        self._click("cancel", request_id, user)

    @rule(
        request_id=requests,
        ops=st.lists(
            st.tuples(
                st.sampled_from(["approve", "approve", "approve", "deny", "cancel", "execute"]),
                st.sampled_from(CLICKERS),
            ),
            min_size=2,
            max_size=6,
        ),
    )
    def concurrent_clicks(self, request_id: str, ops: list[tuple[str, str]]) -> None:
        calls: list[Coroutine[Any, Any, Any]] = []
        for op, user in ops:
            if op == "execute":
                calls.append(self.flow.execute(request_id, clicker=user))
            else:
                method = {
                    "approve": self.flow.approve,
                    "deny": self.flow.deny,
                    "cancel": self.flow.cancel,
                }[op]
                calls.append(method(request_id, user))

        async def together() -> list[Any]:
            return list(await asyncio.gather(*calls))

        results = self.run(together())
        decisive = [
            r.status
            for r in results
            if isinstance(r, Click)
            and r.status in (Status.APPROVED, Status.DENIED, Status.CANCELLED)
        ]
        assert len(decisive) <= 1, f"more than one click decided {request_id}: {decisive}"
        for (op, user), result in zip(ops, results, strict=True):
            if isinstance(result, Click):
                if op == "approve":
                    self._note_click(request_id, user, result.status)
                if result.refusal is not None:
                    self.note_reply(request_id, result.refusal.text)
        self.settle()

    @rule(request_id=requests, user=st.sampled_from(CLICKERS))
    def approve_and_die(self, request_id: str, user: str) -> None:
        """A replica runs the approval script and dies before starting the execution: the
        sweeper must pick the approved request up as an orphan."""
        envs = self.run(self.flow.eligible_in(user))
        outcome = self.run(self.store.approve(request_id, user, eligible_in=envs))
        self._note_click(request_id, user, outcome.status)

    @rule(request_id=requests, park=st.booleans())
    def another_replica_executes(self, request_id: str, park: bool) -> None:
        """flow.execute from another replica (a retry, an orphan pickup): only a claim that
        wins does anything. With ``park`` it stalls between its two mutations."""
        if park and self.world.parked_rid is None:
            event = asyncio.Event()

            async def parked() -> None:
                PARK.set(event)
                await self.flow.execute(request_id)

            task = self.loop.create_task(parked())
            for _ in range(2000):
                if task.done() or self.world.parked_task is task:
                    break
                self.run(asyncio.sleep(0.002))
            assert task.done() or self.world.parked_task is task, "the execution stuck"
            if task.done():
                self.run(asyncio.gather(task, return_exceptions=True))
        else:
            self.run(self.flow.execute(request_id))
        self.settle()

    # -- time, the sweeper, a stalled replica ---------------------------------------------------
    @rule(seconds=st.one_of(st.integers(0, 45), st.integers(0, 700)))
    def advance_and_sweep(self, seconds: int) -> None:
        self.clock.advance(seconds)
        self.run(self.flow.sweep_once())
        self.settle()

    @precondition(lambda self: self.world.parked_rid is not None)
    @rule(lapse=st.booleans(), seconds=st.integers(31, 200))
    def wake_parked(self, lapse: bool, seconds: int) -> None:
        """The stalled replica wakes up: in time, or (``lapse``) after outliving its lease."""
        if lapse:
            self.parked_replica_lapses(seconds)
        else:
            self.release_parked()

    def release_parked(self) -> None:
        event, task = self.world.park_event, self.world.parked_task
        if event is None or task is None:
            return
        event.set()
        self.stats["parked executions released"] += 1
        self.run(asyncio.gather(task, return_exceptions=True))
        self.world.parked_rid = None
        self.world.parked_task = None
        self.world.park_event = None
        self.settle()

    def parked_replica_lapses(self, seconds: int) -> None:
        """The stalled replica outlives its lease: the sweeper marks the request in doubt;
        when it wakes up its second mutation must not reach AWS."""
        rid = self.world.parked_rid
        assert rid is not None
        self.advance_and_sweep(seconds)
        request = self.get(rid)
        assert request is not None
        assert request.state is State.IN_DOUBT, request
        self.release_parked()
        ops = [m.op for m in self.trail if m.rid == rid]
        assert ops == ["TagResource"], f"in doubt yet went on: {ops}"
        assert self.run(self.redis.hget(request_key(rid), "late_outcome")), "late report lost"
        self.stats["in doubt while parked, second mutation stopped"] += 1

    @precondition(lambda self: self.world.parked_rid is None)
    @rule(
        env=st.sampled_from(["production", "staging"]),
        svc=st.sampled_from(SERVICES),
        meanwhile=st.sampled_from(["lease lapses", "lock", "freeze", "approver leaves", "nothing"]),
        seconds=st.integers(31, 120),
    )
    def replica_stalls_mid_execution(
        self, env: str, svc: str, meanwhile: str, seconds: int
    ) -> None:
        """A request runs and its replica stalls between the two mutations; meanwhile the
        lease lapses (the sweeper marks it in doubt), a lock is placed, a freeze window
        opens, or an approver leaves; then the replica wakes up. Only what the checkpoint
        allows may reach AWS (the machine judges the second mutation by its own model)."""
        self.stats[f"stalled mid-execution, meanwhile {meanwhile}"] += 1
        rid, _ = self._submit(ALICE, env, svc, False, env == "staging")
        if rid != MISSING_ID and env == "production":
            eligible = sorted(self.approvers_now()["production"] - {ALICE})
            if eligible:
                self._click("approve", rid, eligible[0], park=True)
        if self.world.parked_rid != rid or rid == MISSING_ID:
            return
        if meanwhile == "lease lapses":
            self.parked_replica_lapses(seconds)
            return
        if meanwhile == "lock" and f"{svc}:{env}" not in self.holds:
            self.toggle_hold(f"{svc}:{env}")
        elif meanwhile == "freeze":
            now = self.clock.now()
            ahead = [a for a, _ in FREEZES[env] if a > now]
            if ahead:
                self.clock.advance((ahead[0] - now).total_seconds())
        elif meanwhile == "approver leaves":
            self.groups[SRE].clear()
            self.reload_config(((CAROL,), 1) if env == "production" else RELOADS[0])
        self.release_parked()

    @rule(revision=st.sampled_from(["1", "2"]))
    def drift(self, revision: str) -> None:
        """Someone changed what the plan depends on."""
        self.world.revision = revision

    # -- locks, config, groups ------------------------------------------------------------------
    @rule(scope=st.sampled_from(SCOPES))
    def toggle_hold(self, scope: str) -> None:
        locks = self.flow.locks
        if scope in self.holds:
            assert self.run(locks.release_hold(scope)) is not None
            self.holds.discard(scope)
        else:
            assert self.run(locks.hold(scope, "db migration running", CAROL)) is None
            self.holds.add(scope)

    @rule(reload=st.sampled_from(RELOADS))
    def reload_config(self, reload: tuple[tuple[str, ...], int]) -> None:
        approvers, required = reload
        envs = dict(self.base_config.environments)
        prod = envs["production"].model_dump()
        prod.update(approvers=list(approvers), approvals_required=required)
        envs["production"] = EnvironmentConfig.model_validate(prod)
        self.flow.config = self.base_config.model_copy(update={"environments": envs})
        self.prod_approvers = approvers
        self.prod_required = required

    @rule(user=st.sampled_from([ERIN, FRANK]), change=st.sampled_from(["leave", "join", "cache"]))
    def group_membership(self, user: str, change: str) -> None:
        """A user leaves or joins the SRE group (clicks see a cached view until a refresh or
        a fresh read; the gate reads it fresh)."""
        if change == "join":
            self.groups[SRE].add(user)
        elif change == "leave":
            self.groups[SRE].discard(user)
        else:
            self.members.refresh()

    # -- Redis faults ---------------------------------------------------------------------------
    @precondition(lambda self: self.world.parked_rid is None and self.outages < 2)
    @rule(
        op=st.sampled_from(["approve", "deny", "cancel", "submit"]),
        request_id=requests,
        user=st.sampled_from(CLICKERS),
    )
    def redis_outage(self, op: str, request_id: str, user: str) -> None:
        """Redis is down for this step: the click or submit fails closed and changes
        nothing; whatever the reply promises is held against the request from then on."""
        before = self.get(request_id) if op != "submit" else None
        self.stats["redis outages"] += 1
        self.outages += 1  # each costs a restart: two per example
        self.server.shutdown()
        try:
            if op == "submit":
                posted = len(self.notifier.posted)
                with pytest.raises(StoreUnavailableError) as raised:
                    self.run(self.flow.submit(TouchAction(env="production"), user, "C0OPS"))
                assert len(self.notifier.posted) == posted, "a card for an unstored request"
                assert raised.value.nothing_changed
            else:
                method = {
                    "approve": self.flow.approve,
                    "deny": self.flow.deny,
                    "cancel": self.flow.cancel,
                }[op]
                with pytest.raises(StoreUnavailableError) as raised:
                    self.run(method(request_id, user))
                exc = raised.value
                if exc.nothing_changed or NOTHING in exc.user_message.lower():
                    self.promise(request_id, exc.user_message, ever=False)
        finally:
            self.server.restart()
        # The click itself changed nothing: the request is exactly as it was.
        after = self.get(request_id) if op != "submit" else None
        if before is not None:
            assert after is not None
            assert (after.state, after.version) == (before.state, before.version), (before, after)
        self.settle()

    @initialize(allowed=st.sampled_from([False] * (2 if FUZZ else 5) + [True]))
    def allow_card_faults(self, allowed: bool) -> None:
        """Redis dying while a card is posted costs seconds (the flow retries with sleeps
        and then keeps trying to cancel): allowed in some examples, once."""
        self.card_faults_allowed = allowed

    @precondition(
        lambda self: (
            self.world.parked_rid is None and self.card_faults_allowed and self.card_faults < 1
        )
    )
    @rule(
        requester=st.sampled_from(USERS),
        env=st.sampled_from(ENVS),
        reply_lost=st.booleans(),
    )
    def redis_dies_while_card_is_posted(self, requester: str, env: str, reply_lost: bool) -> None:
        """Redis goes away while the card is posted (or, with ``reply_lost``, right after it
        applied set_card but before the reply arrived): set_card and the abandon both fail.
        Without a lost reply the request stays NEW (nothing runs it) or is cancelled later;
        with one it may be open, so the reply must promise nothing (checked by invariant 3:
        a promise then followed by the sweeper running it would fail). Slow (the flow retries
        with sleeps): in some examples, once."""
        self.card_faults += 1
        self.stats["redis died while a card was posted"] += 1
        if reply_lost:
            scripts = self.store._scripts
            real = scripts["set_card"]

            async def applied_then_lost(keys: list[str], args: list[Any]) -> Any:
                await real(keys=keys, args=args)
                self.server.shutdown()
                raise RedisConnectionError("connection lost before the reply")

            scripts["set_card"] = applied_then_lost  # type: ignore[assignment]
        else:
            self.notifier.on_post = lambda _request: self.server.shutdown()
        try:
            rid, text = self._submit(requester, env, "api", False, False)
        finally:
            self.notifier.on_post = None
            if reply_lost:
                self.store._scripts["set_card"] = real
            self.restart_redis()
        self.settle()  # the flow keeps trying to cancel the request once Redis is back
        if rid != MISSING_ID:
            assert text is not None
            request = self.get(rid)
            assert request is not None
            if not reply_lost:
                # set_card never reached Redis: only NEW (which nothing runs) or cancelled.
                assert request.state in (State.NEW, State.CANCELLED), request
                self.never_run.add(rid)

    # -- invariants -----------------------------------------------------------------------------
    @invariant()
    def count_steps(self) -> None:
        self.stats["checks"] += 1  # after initialisation and after every step

    @invariant()
    def mutations_only_through_the_gate(self) -> None:
        """Invariants 1 and 2, for every mutation recorded since the last step."""
        with self.trail_lock:
            trail = list(self.trail)
        seen: dict[str, list[Mutation]] = {}
        for index, entry in enumerate(trail):
            assert entry.rid is not None, f"a mutation outside any execution: {entry}"
            earlier = seen.setdefault(entry.rid, [])
            if index >= self.checked:
                problems = self._judge(entry, first=not earlier)
                assert not problems, (
                    f"{entry.op} for {entry.rid} reached AWS although "
                    + "; ".join(problems)
                    + f" (snapshot {entry})"
                )
                ops = [m.op for m in earlier]
                assert entry.op not in ops, f"{entry.op} twice for {entry.rid}: {ops}"
                tokens = {m.stored.get("lease_token") for m in earlier if m.stored}
                if entry.stored:
                    tokens.add(entry.stored.get("lease_token"))
                assert len(tokens) <= 1, f"two claims mutated {entry.rid}: {tokens}"
            earlier.append(entry)
        self.checked = len(trail)
        for rid, runs in self.world.executions.items():
            assert runs <= 1, f"{rid} executed {runs} times"

    def _judge(self, entry: Mutation, *, first: bool) -> list[str]:
        model = self.models.get(entry.rid or "")
        if model is None:
            return ["the request is unknown to the machine"]
        problems: list[str] = []
        stored = entry.stored
        if entry.error is not None or not stored:
            return [f"its stored state could not be read ({entry.error})"]
        now_ms = int(entry.at.timestamp() * 1000)
        if stored.get("state") != State.EXECUTING.value:
            problems.append(f"it was {stored.get('state')}, not executing")
        elif int(stored.get("lease_until") or 0) < now_ms:
            problems.append(f"its lease had lapsed ({stored.get('lease_until')} < {now_ms})")
        if not model.break_glass:
            if model.scope in entry.holds:
                problems.append(f"{model.scope} was locked")
            if self.frozen(model.env, entry.at):
                problems.append(f"a freeze window was open in {model.env} at {entry.at}")
        if not first:
            return problems
        needed = max(
            model.required, entry.required_now[model.env] + (1 if model.break_glass else 0)
        )
        approvals = [a["user"] for a in _approvals(stored)]
        eligible = {
            u for u in approvals if u in entry.approvers_now[model.env] and u != model.requester
        }
        if len(eligible) < needed:
            problems.append(
                f"only {sorted(eligible)} of {approvals} were eligible, {needed} needed"
            )
        if model.approved_at is None:
            problems.append("the machine never saw it approved")
        else:
            if model.approved_at > model.expires_at:
                problems.append("it was approved after it expired")
            if entry.at > max(model.expires_at, model.approved_at + GRACE):
                problems.append("it had expired")
        if entry.revision != model.revision:
            problems.append(f"the plan drifted ({model.revision} -> {entry.revision})")
        return problems

    @invariant()
    def nothing_changed_means_nothing_changes(self) -> None:
        """Invariant 3: replies, outcomes and ephemeral messages that said nothing changed."""
        for rid, _user, text in self.notifier.tells:
            self.note_reply(rid, text, ever=True)
        for rid in self.models:
            request = self.get(rid)
            if request is not None and request.outcome:
                self.note_reply(rid, request.outcome, ever=True)
        with self.trail_lock:
            trail = list(self.trail)
        for index, entry in enumerate(trail):
            promise = self.promises.get(entry.rid or "")
            if promise is None:
                continue
            if promise.after <= index:
                raise AssertionError(
                    f"{entry.op} for {entry.rid} reached AWS after the reply {promise.text!r}"
                )

    @invariant()
    def safety(self) -> None:
        """Invariant 4: transitions, final states, approvals."""
        for rid, model in self.models.items():
            request = self.get(rid)
            assert request is not None, f"{rid} vanished"
            events = self.run(self.store.events(rid))
            check_transitions(request, events)
            approvers = request.approvers
            assert len(approvers) == len(set(approvers)), f"duplicate approvals: {approvers}"
            assert set(approvers) == model.approvals, (rid, approvers, model.approvals)
            assert model.requester not in approvers
            assert request.required == model.required, (request.required, model.required)
            if model.final is not None:
                assert request.state is model.final, (
                    f"{rid} left final state {model.final} for {request.state}"
                )
            elif request.state.final:
                model.final = request.state
            ops = [m.op for m in self.trail if m.rid == rid]
            if request.state is State.SUCCEEDED:
                assert ops == ["TagResource", "UpdateService"], (rid, ops)
            if request.state in (State.DENIED, State.CANCELLED, State.EXPIRED):
                assert not ops, f"{rid} is {request.state} but changed AWS: {ops}"
            if rid in self.never_run:
                assert not ops, f"{rid}'s card was never recorded, yet it changed AWS: {ops}"
                assert request.state in (State.NEW, State.CANCELLED, State.EXPIRED), request
        stray = set(self.world.executions) - set(self.models)
        assert not stray, f"executions of unknown requests: {stray}"


def _approvals(stored: dict[str, str]) -> list[dict[str, Any]]:
    raw = json.loads(stored.get("approvals") or "[]")
    return raw if isinstance(raw, list) else []


SETTINGS = settings(
    max_examples=500 if FUZZ else 40,
    stateful_step_count=60 if FUZZ else 30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.timeout(3600 if FUZZ else 120)
def test_flow_state_machine(
    redis_server: RedisServer, aws_world: DhanamWorld, tmp_path: Path
) -> None:
    if not redis_server.is_running:
        redis_server.restart()
    stats: Counter[str] = Counter()
    machine = type(
        "FlowMachineOnMoto",
        (FlowMachine,),
        {
            "redis_server": redis_server,
            "clients": AwsClients(aws_world.endpoint_url, aws_world.region),
            "config_path": freeze_config(tmp_path),
            "stats": stats,
        },
    )
    started = time.monotonic()
    try:
        run_state_machine_as_test(machine, settings=SETTINGS)
    finally:
        stats["steps"] = stats["checks"] - stats["examples"]
        del stats["checks"]
        summary = ", ".join(f"{k}: {v}" for k, v in sorted(stats.items()))
        print(f"\nflow state machine ({time.monotonic() - started:.1f} s): {summary}")
    # Not vacuous: executions reached AWS, and some were stopped by the gate.
    assert stats["mutations"] > 0, stats
    assert stats["final succeeded"] > 0, stats
