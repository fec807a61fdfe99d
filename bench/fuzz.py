"""Fuzz every HTTP route of a running sandbox bot: N hostile requests per route and mode.

Starts the sandbox world in this process (redis-server, the Slack emulator, the fake
PagerDuty, the SNS signer whose certificate the bot trusts; no AWS) and the bot on a real port,
then sends the strategies of tests/fuzz_inputs.py — random bytes, JSON of any shape, JSON
nested up to 10,000 levels, mutated real samples, forged/stale/non-ASCII signature headers —
signed and unsigned, to each route. Prints the count of each status per route and mode, and
the first inputs that got a 5xx (there should be none) or, signed to /slack/events, a status
other than 200/400/413 (Bolt's 404 for a request no listener takes is answered 200 now).

    .venv/bin/python bench/fuzz.py [--examples 100000] [--only slack,sns,pagerduty,get]
        [--json PATH]

The CI fuzz suite (tests/scenario/test_http_fuzz.py) runs the same strategies a few hundred
times per route; this is the long run.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Coroutine
from typing import Any, TypeVar

import aiohttp
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bot.logs import configure_logging
from core.settings import LogFormat
from sandbox.world import SANDBOX_PD_WEBHOOK_SECRET, SANDBOX_SIGNING_SECRET, SandboxWorld
from tests.fuzz_inputs import (
    Case,
    Secrets,
    get_cases,
    pagerduty_cases,
    slack_cases,
    sns_signed_cases,
    sns_unsigned_cases,
)

TOPIC = "arn:aws:sns:us-east-1:123456789012:dhanam-alarms"  # the example config's topic
SECRETS = Secrets(slack=SANDBOX_SIGNING_SECRET, pagerduty=SANDBOX_PD_WEBHOOK_SECRET)
T = TypeVar("T")
# A signed Slack request: handled or acknowledged (200), malformed (400), too big (413).
SIGNED_SLACK_STATUSES = frozenset({200, 400, 413})


class Runner:
    """The world's event loop in a thread; hypothesis drives requests from this one."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


async def post(session: aiohttp.ClientSession, url: str, case: Case) -> int:
    async with session.post(url + case.route, data=case.body, headers=case.headers) as resp:
        await resp.read()
        return resp.status


async def request(
    session: aiohttp.ClientSession, url: str, method: str, path: str, headers: dict[str, str]
) -> int:
    async with session.request(method, url + path, headers=headers) as resp:
        await resp.read()
        return resp.status


def fuzz_route(
    runner: Runner,
    session: aiohttp.ClientSession,
    url: str,
    strategy: st.SearchStrategy[Case],
    examples: int,
    allowed: frozenset[int] | None = None,
) -> tuple[Counter[int], list[Case], float]:
    """Statuses seen; the first cases answered 5xx or, when ``allowed`` is given, outside it."""
    statuses: Counter[int] = Counter()
    failures: list[Case] = []

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def probe(case: Case) -> None:
        status = runner.run(post(session, url, case))
        statuses[status] += 1
        unexpected = status >= 500 or (allowed is not None and status not in allowed)
        if unexpected and len(failures) < 5:
            failures.append(case)

    started = time.perf_counter()
    probe()
    return statuses, failures, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000, help="per route and mode")
    parser.add_argument("--only", default="slack,sns,pagerduty,get")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    only = set(args.only.split(","))

    runner = Runner()
    world = SandboxWorld(aws=False, log_format=LogFormat.JSON)
    runner.run(world.start())
    # Quiet: a hundred thousand refusals are logged at warning level otherwise.
    level = os.environ.get("FUZZ_LOG_LEVEL")  # e.g. info, to see what the bot said
    quiet = None if level else open(os.devnull, "w")  # noqa: SIM115 - open until exit
    configure_logging("json", level or "critical", stream=quiet)
    session = runner.run(_session())
    url = world.bot_url
    plans: list[tuple[str, str, st.SearchStrategy[Case]]] = []
    if "slack" in only:
        plans += [
            ("/slack/events", "unsigned", slack_cases(SECRETS, signed=False)),
            ("/slack/events", "signed", slack_cases(SECRETS, signed=True)),
        ]
    if "sns" in only:
        plans += [
            ("/webhooks/sns", "unsigned", sns_unsigned_cases()),
            ("/webhooks/sns", "signed", sns_signed_cases(world.sns, TOPIC)),
        ]
    if "pagerduty" in only:
        plans += [
            ("/webhooks/pagerduty", "unsigned", pagerduty_cases(SECRETS, signed=False)),
            ("/webhooks/pagerduty", "signed", pagerduty_cases(SECRETS, signed=True)),
        ]
    results: list[dict[str, Any]] = []
    try:
        for route, mode, strategy in plans:
            allowed = (
                SIGNED_SLACK_STATUSES if (route, mode) == ("/slack/events", "signed") else None
            )
            statuses, failures, seconds = fuzz_route(
                runner, session, url, strategy, args.examples, allowed
            )
            results.append(_report(route, mode, statuses, failures, seconds, allowed))
        if "get" in only:
            results.append(_fuzz_get(runner, session, url, args.examples))
    finally:
        runner.run(session.close())
        runner.run(world.stop())
        runner.close()
    writes = [c.method for c in world.slack.calls]
    print(f"\nSlack emulator calls during the run: {dict(Counter(writes))}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if any(r["5xx"] or r["unexpected"] for r in results):
        sys.exit(1)


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


def _fuzz_get(
    runner: Runner, session: aiohttp.ClientSession, url: str, examples: int
) -> dict[str, Any]:
    statuses: Counter[int] = Counter()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(req=get_cases())
    def probe(req: tuple[str, str, dict[str, str]]) -> None:
        path, method, headers = req
        statuses[runner.run(request(session, url, method, path, headers))] += 1

    started = time.perf_counter()
    probe()
    return _report("/health,/metrics", "any method", statuses, [], time.perf_counter() - started)


def _report(
    route: str,
    mode: str,
    statuses: Counter[int],
    failures: list[Case],
    seconds: float,
    allowed: frozenset[int] | None = None,
) -> dict[str, Any]:
    total = sum(statuses.values())
    five = sum(n for s, n in statuses.items() if s >= 500)
    unexpected = sum(
        n for s, n in statuses.items() if s < 500 and allowed is not None and s not in allowed
    )
    shown = ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))
    print(f"{route:22} {mode:16} {total:7} examples in {seconds:6.1f} s   {shown}   5xx: {five}")
    if unexpected:
        print(f"    {unexpected} answers outside {sorted(allowed or ())}")
    for case in failures:
        print(f"    unexpected for {case.kind}: headers={case.headers} body={case.body[:200]!r}")
    return {
        "route": route,
        "mode": mode,
        "examples": total,
        "statuses": dict(statuses),
        "5xx": five,
        "unexpected": unexpected,
        "seconds": round(seconds, 1),
    }


if __name__ == "__main__":
    main()
