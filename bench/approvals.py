"""Click-to-transition: how fast, and in how many Redis round trips, an approval click lands.

Starts its own ``redis-server`` (first with appendonly off, then with ``appendonly yes`` and
``appendfsync everysec``), builds an ``ApprovalFlow`` on the real ``ApprovalStore`` (no
Slack: a no-op Notifier; a no-op Action) and measures, per server:

(a) latency of ``flow.approve`` (sequential, each on a fresh pending request, its execution
    drained outside the timed interval): p50/p99 of the whole click and of the decision
    alone (until the card edit starts);
(b) throughput with C concurrent clickers over distinct requests;
(c) Redis round trips and commands per click, counted client-side (every packed command and
    every socket write of the bot's client) and cross-checked server-side with
    ``INFO commandstats``; split into the decision path (before the card edit: the EVALSHA of
    the transition script) and after it (the pipelined audit XADD + version HGET). Measured
    on requests needing two approvals: the first click is RECORDED, the second APPROVED
    (with the execution that would follow discarded);
(d) a race: 50 approvers click one request at once, 20 times: exactly one APPROVED and one
    execution each time (asserted).

    .venv/bin/python bench/approvals.py [--requests 2000] [--concurrency 50] [--json PATH]
"""

from __future__ import annotations

import sys
from pathlib import Path

# As a script, this file's directory (bench/) is first on sys.path, and this module's name
# would shadow the `approvals` package: put the repository first.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

import structlog
from _common import REPO, machine_info, percentile
from redis.asyncio.connection import AbstractConnection

from approvals.flow import ActionRegistry, ApprovalFlow
from approvals.locks import Locks
from approvals.models import Action, ApprovalRequest, Plan, Result, State
from approvals.store import ApprovalStore, Status
from core.clock import SystemClock
from core.config import Config, load_config
from integrations.redis_client import RedisClient, create_redis
from sandbox.redis_server import RedisServer

CONFIG = REPO / "examples" / "dhanam.example.toml"
REQUESTER = "U0ALICE"
APPROVERS = [f"U0A{i:03d}" for i in range(64)]  # members of the S0SRE group here
RACERS = 50
RACE_ROUNDS = 20
MAX_SECONDS = 300.0  # per phase: a stuck run fails instead of hanging


# ---- counting what the bot's client sends ---------------------------------------------------
@dataclass
class Wire:
    """Commands and socket writes (round trips) of every redis-py asyncio connection."""

    commands: Counter[str] = field(default_factory=Counter)
    round_trips: int = 0

    def total(self) -> int:
        return sum(self.commands.values())

    def snapshot(self) -> tuple[int, int]:
        return self.total(), self.round_trips


WIRE = Wire()


def _instrument() -> None:
    pack_command = AbstractConnection.pack_command
    send_packed = AbstractConnection.send_packed_command

    def counting_pack(self: AbstractConnection, *args: Any) -> list[bytes]:
        name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
        WIRE.commands[name.split()[0].upper()] += 1
        return pack_command(self, *args)

    async def counting_send(
        self: AbstractConnection, command: Any, check_health: bool = True
    ) -> None:
        WIRE.round_trips += 1
        await send_packed(self, command, check_health)

    AbstractConnection.pack_command = counting_pack  # type: ignore[method-assign]
    AbstractConnection.send_packed_command = counting_send  # type: ignore[method-assign]


# ---- the world ------------------------------------------------------------------------------
class NoopAction(Action):
    """Does nothing, counts that it ran. Its own service: executions never share a lock."""

    kind: ClassVar[str] = "bench"
    executions: ClassVar[Counter[str]] = Counter()
    marker: str

    @property
    def service(self) -> str | None:
        return self.marker

    def title(self) -> str:
        return f"Bench {self.marker}"

    async def plan(self, _runtime: Any) -> Plan:
        return Plan.build(f"Bench {self.marker}", inputs={"marker": self.marker})

    async def execute(self, _plan: Plan, _runtime: Any) -> Result:
        NoopAction.executions[self.marker] += 1
        return Result(ok=True, summary="done")


class NoopNotifier:
    """No Slack. Notes when the card edit starts: the transition is decided by then."""

    def __init__(self) -> None:
        self.edit_started: dict[str, float] = {}
        self.wire_at_edit: dict[str, tuple[int, int]] = {}

    async def post_card(self, _request: ApprovalRequest) -> tuple[str, str]:
        return "C0DEPLOYS", "1700000000.000100"

    async def update_card(self, request: ApprovalRequest) -> None:
        self.edit_started.setdefault(request.id, time.perf_counter())
        self.wire_at_edit.setdefault(request.id, WIRE.snapshot())

    async def thread_reply(self, _request: ApprovalRequest, _text: str) -> None:
        return None

    async def tell(self, _request: ApprovalRequest, _user: str, _text: str) -> None:
        return None


class GroupMembers:
    async def resolve(
        self, principals: list[str], *, fresh: bool = False
    ) -> tuple[frozenset[str], dict[str, str]]:
        return await self.expand(principals, fresh=fresh), {}

    async def expand(self, principals: list[str], *, fresh: bool = False) -> frozenset[str]:  # noqa: ARG002 (fixed membership: nothing to refresh)
        users: set[str] = set()
        for principal in principals:
            users |= set(APPROVERS) if principal == "S0SRE" else {principal}
        return frozenset(users)


def build_flow(redis: RedisClient, config: Config, notifier: NoopNotifier) -> ApprovalFlow:
    clock = SystemClock()
    registry = ActionRegistry()
    registry.add(NoopAction)
    return ApprovalFlow(
        config=config,
        store=ApprovalStore(redis, clock),
        locks=Locks(redis, clock),
        notifier=notifier,
        members=GroupMembers(),
        registry=registry,
        runtime=None,
        clock=clock,
        lease=timedelta(seconds=30),
    )


def config_with(required: int) -> Config:
    config = load_config(CONFIG)
    production = config.environments["production"].model_copy(
        update={"approvals_required": required}
    )
    return config.model_copy(
        update={"environments": {**config.environments, "production": production}}
    )


async def make_requests(flow: ApprovalFlow, count: int, tag: str) -> list[str]:
    ids = []
    for i in range(count):
        action = NoopAction(env="production", marker=f"{tag}-{i}")
        submitted = await flow.submit(action, REQUESTER, "C0OPS")
        ids.append(submitted.request.id)
    return ids


async def server_stats(redis: RedisClient) -> dict[str, int]:
    info = await redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in info.items()}


def diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


@contextmanager
def deadline(what: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    if time.monotonic() - started > MAX_SECONDS:
        raise RuntimeError(f"{what} took longer than {MAX_SECONDS:.0f} s")


# ---- the phases -------------------------------------------------------------------------------
async def latency(flow: ApprovalFlow, notifier: NoopNotifier, n: int) -> dict[str, float]:
    ids = await make_requests(flow, n, "lat")
    click_ms, decide_ms = [], []
    for i, request_id in enumerate(ids):
        approver = APPROVERS[i % len(APPROVERS)]
        started = time.perf_counter()
        click = await asyncio.wait_for(flow.approve(request_id, approver), 10)
        done = time.perf_counter()
        if click.status is not Status.APPROVED:
            raise RuntimeError(f"click on {request_id}: {click.status}")
        click_ms.append((done - started) * 1000)
        decide_ms.append((notifier.edit_started[request_id] - started) * 1000)
        await flow.drain()  # the execution, outside the timed interval
    click_ms.sort()
    decide_ms.sort()
    return {
        "p50_ms": percentile(click_ms, 50),
        "p99_ms": percentile(click_ms, 99),
        "decision_p50_ms": percentile(decide_ms, 50),
        "decision_p99_ms": percentile(decide_ms, 99),
    }


async def throughput(flow: ApprovalFlow, n: int, concurrency: int) -> dict[str, float]:
    ids = await make_requests(flow, n, "tput")
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for item in enumerate(ids):
        queue.put_nowait(item)
    failures: list[str] = []

    async def clicker() -> None:
        while not queue.empty():
            i, request_id = queue.get_nowait()
            click = await asyncio.wait_for(
                flow.approve(request_id, APPROVERS[i % len(APPROVERS)]), 10
            )
            if click.status is not Status.APPROVED:
                failures.append(f"{request_id}: {click.status}")

    # The executions the clicks start are held back and run afterwards, `concurrency` at a
    # time: left to start all at once, a few hundred of them exhaust redis-py's connection
    # pool (100 connections, non-blocking: the 101st concurrent command fails at once).
    held: list[Coroutine[Any, Any, None]] = []
    flow._spawn = held.append  # type: ignore[method-assign]
    started = time.perf_counter()
    await asyncio.gather(*(clicker() for _ in range(concurrency)))
    clicked = time.perf_counter()
    del flow._spawn  # back to the class's
    slots = asyncio.Semaphore(concurrency)

    async def run(execution: Coroutine[Any, Any, None]) -> None:
        async with slots:
            await asyncio.wait_for(execution, 30)

    await asyncio.gather(*(run(execution) for execution in held))
    drained = time.perf_counter()
    if len(held) != n:
        raise RuntimeError(f"{n} approving clicks started {len(held)} executions")
    if failures:
        raise RuntimeError(f"{len(failures)} clicks failed, e.g. {failures[0]}")
    states = Counter()
    for request_id in ids[:: max(1, n // 100)]:
        stored = await flow.store.get(request_id)
        states[stored.state.value if stored else "missing"] += 1
    if set(states) != {State.SUCCEEDED.value}:
        raise RuntimeError(f"after the clicks: {dict(states)}")
    return {
        "clicks_per_s": n / (clicked - started),
        "executions_per_s": n / (drained - clicked),
    }


async def round_trips(
    flow: ApprovalFlow, notifier: NoopNotifier, redis: RedisClient, m: int
) -> dict[str, Any]:
    """Per click, on requests needing two approvals: first click RECORDED, second APPROVED
    (its execution discarded). Decision = before the card edit starts; the rest after it."""
    ids = await make_requests(flow, m, "rt")
    flow._spawn = lambda coro: coro.close()  # type: ignore[method-assign]  # no execution
    # Warm up: the scripts are loaded, the connections are open.
    await flow.approve(ids[0], APPROVERS[0])
    await flow.approve(ids[0], APPROVERS[1])
    ids = ids[1:]
    figures: dict[str, Any] = {}
    for label, approver, want in (
        ("recorded", APPROVERS[0], Status.RECORDED),
        ("approved", APPROVERS[1], Status.APPROVED),
    ):
        server_before = await server_stats(redis)
        decision = Counter[str]()
        total_before = WIRE.snapshot()
        for request_id in ids:
            before = WIRE.snapshot()
            click = await flow.approve(request_id, approver)
            if click.status is not want:
                raise RuntimeError(f"{label} click on {request_id}: {click.status}")
            at_edit = notifier.wire_at_edit.pop(request_id)
            notifier.edit_started.pop(request_id, None)
            decision["commands"] += at_edit[0] - before[0]
            decision["round_trips"] += at_edit[1] - before[1]
        total_after = WIRE.snapshot()
        server = diff(await server_stats(redis), server_before)
        server.pop("info", None)  # our own
        server["all"] = sum(server.values())
        n = len(ids)
        commands = (total_after[0] - total_before[0]) / n
        trips = (total_after[1] - total_before[1]) / n
        figures[label] = {
            "decision_commands": decision["commands"] / n,
            "decision_round_trips": decision["round_trips"] / n,
            "after_edit_commands": commands - decision["commands"] / n,
            "after_edit_round_trips": trips - decision["round_trips"] / n,
            "total_commands": commands,
            "total_round_trips": trips,
            "server_per_click": {k: round(v / n, 2) for k, v in sorted(server.items())},
        }
        if server.get("evalsha", 0) != n:
            raise RuntimeError(f"{label}: {server.get('evalsha')} EVALSHA for {n} clicks")
    return figures


async def race(flow: ApprovalFlow, rounds: int) -> dict[str, int]:
    executions = 0
    for round_ in range(rounds):
        (request_id,) = await make_requests(flow, 1, f"race{round_}")
        clicks = await asyncio.gather(
            *(flow.approve(request_id, user) for user in APPROVERS[:RACERS])
        )
        await flow.drain()
        statuses = Counter(c.status for c in clicks)
        stored = await flow.store.get(request_id)
        ran = NoopAction.executions[f"race{round_}-0"]
        assert statuses[Status.APPROVED] == 1, statuses
        assert statuses[Status.DECIDED] == RACERS - 1, statuses
        assert stored is not None
        assert stored.state is State.SUCCEEDED, stored
        assert len(stored.approvals) == 1, stored.approvals
        assert ran == 1, f"round {round_}: executed {ran} times"
        executions += ran
    return {"rounds": rounds, "racers": RACERS, "executions": executions}


async def run_on(server: RedisServer, args: argparse.Namespace) -> dict[str, Any]:
    redis = create_redis(server.url, timeout=10.0)
    NoopAction.executions.clear()
    try:
        notifier = NoopNotifier()
        one = build_flow(redis, config_with(1), notifier)
        two = build_flow(redis, config_with(2), notifier)
        result: dict[str, Any] = {}
        with deadline("latency"):
            result.update(await latency(one, notifier, args.requests))
        with deadline("throughput"):
            result.update(await throughput(one, args.requests, args.concurrency))
        with deadline("round trips"):
            result["per_click"] = await round_trips(two, notifier, redis, args.clicks)
        with deadline("race"):
            result["race"] = await race(one, RACE_ROUNDS)
        approved = result["per_click"]["approved"]
        result["redis_commands_per_click_decision"] = approved["decision_commands"]
        result["redis_commands_per_click_total"] = approved["total_commands"]
        result["race_executions"] = result["race"]["executions"]
        return result
    finally:
        await redis.aclose()


# ---- output -----------------------------------------------------------------------------------
def print_run(name: str, result: dict[str, Any]) -> None:
    print(f"\n== {name}")
    print(f"  click latency (sequential)      p50 {result['p50_ms']:7.3f} ms   "
          f"p99 {result['p99_ms']:7.3f} ms")  # fmt: skip
    print(f"  decision only (to card edit)    p50 {result['decision_p50_ms']:7.3f} ms   "
          f"p99 {result['decision_p99_ms']:7.3f} ms")  # fmt: skip
    print(f"  throughput                      {result['clicks_per_s']:8.0f} clicks/s   "
          f"(then executions: {result['executions_per_s']:.0f}/s)")  # fmt: skip
    print("  per click        decision path        after the card edit    total")
    print("                   cmds  round trips    cmds  round trips      cmds  round trips")
    for label, fig in result["per_click"].items():
        print(
            f"  {label:<16} {fig['decision_commands']:4.2f}  {fig['decision_round_trips']:4.2f}"
            f"           {fig['after_edit_commands']:4.2f}  {fig['after_edit_round_trips']:4.2f}"
            f"             {fig['total_commands']:4.2f}  {fig['total_round_trips']:4.2f}"
        )
    for label, fig in result["per_click"].items():
        server = ", ".join(f"{k} {v:g}" for k, v in fig["server_per_click"].items())
        print(f"  server-side per {label} click (INFO commandstats, incl. inside scripts):")
        print(f"    {server}")
    race_ = result["race"]
    print(
        f"  race: {race_['racers']} approvers at once on one request, {race_['rounds']} rounds: "
        f"{race_['executions']} executions, one APPROVED per round (asserted)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per phase (a, b)")
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent clickers (b)")
    parser.add_argument("--clicks", type=int, default=500, help="clicks counted per kind (c)")
    parser.add_argument("--no-aof", action="store_true", help="skip the appendonly run")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or args.clicks < 2:
        parser.error("--requests and --concurrency must be >= 1, --clicks >= 2")

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    _instrument()
    machine = machine_info()
    print(f"machine: {machine['nproc']} CPU(s), {machine['cpu_model']}, {machine['python']}")
    print(f"requests {args.requests} per phase, concurrency {args.concurrency}, "
          f"{args.clicks} clicks counted per kind")  # fmt: skip
    setups = [("appendonly no", [])]
    if not args.no_aof:
        setups.append(("appendonly yes, appendfsync everysec", ["--appendfsync", "everysec"]))
    runs: dict[str, Any] = {}
    for name, extra in setups:
        server = RedisServer(appendonly=bool(extra), extra_args=extra)
        try:
            server.start()
            runs[name] = asyncio.run(run_on(server, args))
        finally:
            server.stop()
        print_run(name, runs[name])

    first = runs["appendonly no"]
    out = {
        "p50_ms": first["p50_ms"],
        "p99_ms": first["p99_ms"],
        "clicks_per_s": first["clicks_per_s"],
        "redis_commands_per_click_decision": first["redis_commands_per_click_decision"],
        "redis_commands_per_click_total": first["redis_commands_per_click_total"],
        "race_executions": first["race_executions"],
        "machine": machine,
        "runs": runs,
    }
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
