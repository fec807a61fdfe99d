"""`/dhanam status` with every source slowed down: the reply costs one delay, not their sum.

Starts the sandbox world in this process (redis-server, moto seeded with the Dhanam world, the
Slack emulator, the fake Dhanam API, the bot on a real port). Every AWS HTTP request the bot
sends waits DELAY seconds first (a botocore `before-send` hook, in the worker thread that makes
the call) and every answer of the fake API waits DELAY seconds. Then it sends signed
`/dhanam status api production` (the detail view) and `/dhanam status` (the overview) slash
commands, one at a time, and times each from the POST to the ephemeral reply arriving in the
Slack emulator.

    .venv/bin/python bench/status.py [--runs 20] [--delay 0.5] [--json PATH]

One warm-up run per view comes first: it fills the caches that make later replies need no
chained call (task definition by ARN, the image's ECR digest, the load balancer named by the
service's alarms); its time is printed apart.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from _common import machine_info, percentile

from bot.logs import configure_logging
from bot.wiring import Overrides
from core.settings import LogFormat
from integrations.aws.clients import AwsClients
from sandbox.world import SandboxWorld

REPLY_TIMEOUT = 15.0
VIEWS = {"detail": "status api production", "overview": "status"}


@contextmanager
def slow_aws(delay: float, calls: Counter[str]) -> Iterator[None]:
    """Every client the bot creates sleeps `delay` before each request and counts it."""
    original = AwsClients.client

    def client(self: AwsClients, name: str, region: str | None = None) -> Any:
        made = original(self, name, region)
        if not getattr(made, "_bench_slow", False):

            def before_send(request: Any, **_: Any) -> None:
                target = request.headers.get("X-Amz-Target", b"")
                target = target.decode() if isinstance(target, bytes) else str(target)
                operation = target.rsplit(".", 1)[-1] if target else _query_action(request)
                calls[f"{name}:{operation}"] += 1
                time.sleep(delay)

            made.meta.events.register("before-send", before_send)
            made._bench_slow = True
        return made

    AwsClients.client = client  # type: ignore[method-assign]
    try:
        yield
    finally:
        AwsClients.client = original  # type: ignore[method-assign]


def _query_action(request: Any) -> str:
    body = request.body
    text = body.decode() if isinstance(body, bytes) else str(body or "")
    for pair in text.split("&"):
        key, _, value = pair.partition("=")
        if key == "Action":
            return value
    return "?"


async def one_reply(world: SandboxWorld, text: str) -> float:
    before = len(world.slack.ephemerals("U0BOB"))
    started = time.perf_counter()
    reply = await world.slash(text, user="bob")
    if reply.status != 200:
        raise RuntimeError(f"the bot answered HTTP {reply.status}: {reply.body}")
    deadline = started + REPLY_TIMEOUT
    while len(world.slack.ephemerals("U0BOB")) == before:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"no reply to /dhanam {text} within {REPLY_TIMEOUT} s")
        await asyncio.sleep(0.002)
    elapsed = time.perf_counter() - started
    message = world.slack.ephemerals("U0BOB")[-1]
    if "unavailable" in json.dumps(message.blocks):
        raise RuntimeError(f"a source was unavailable: {message.text}")
    return elapsed


async def measure(
    world: SandboxWorld, view: str, runs: int, delay: float, aws: Counter[str]
) -> dict[str, Any]:
    assert world.api is not None
    text = VIEWS[view]
    warmup_s = await one_reply(world, text)
    await world.settle()
    aws.clear()
    world.api.requests.clear()
    times = []
    for _ in range(runs):
        times.append(await one_reply(world, text))
        await world.settle()
    per_reply = {k: v / runs for k, v in sorted(aws.items())}
    per_reply.update({f"http:{k}": v / runs for k, v in sorted(world.api.requests.items())})
    sequential = sum(per_reply.values()) * delay
    times.sort()
    return {
        "view": view,
        "command": f"/dhanam {text}",
        "runs": runs,
        "delay_s": delay,
        "warmup_s": round(warmup_s, 3),
        "p50_s": round(percentile(times, 50), 3),
        "p90_s": round(percentile(times, 90), 3),
        "max_s": round(times[-1], 3),
        "sources_per_reply": per_reply,
        "delayed_calls_per_reply": sum(per_reply.values()),
        "sequential_s": round(sequential, 3),
    }


def report(result: dict[str, Any]) -> None:
    delayed = f"every source delayed {result['delay_s']} s"
    print(f"\n{result['command']}  ({result['runs']} runs, {delayed})")
    print(f"  {'source':48} calls/reply")
    for name, count in result["sources_per_reply"].items():
        print(f"  {name:48} {count:g}")
    print(f"  delayed calls per reply: {result['delayed_calls_per_reply']:g}")
    print(
        f"  reply time p50 {result['p50_s']:.3f} s · p90 {result['p90_s']:.3f} s · "
        f"max {result['max_s']:.3f} s (warm-up run {result['warmup_s']:.3f} s)"
    )
    print(f"  sequentially it would be ≥ {result['sequential_s']:.3f} s (sum of the delays)")


async def run(runs: int, delay: float) -> dict[str, Any]:
    aws: Counter[str] = Counter()
    with slow_aws(delay, aws):
        world = SandboxWorld(
            dhanam_api=True, log_format=LogFormat.JSON, overrides=Overrides(sweeper=False)
        )
        await world.start()
        try:
            assert world.api is not None
            world.api.delay = delay
            results = [await measure(world, view, runs, delay, aws) for view in VIEWS]
        finally:
            await world.stop()
    return {"machine": machine_info(), "results": results}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.5, help="seconds added to every source")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    configure_logging(LogFormat.JSON, "error")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    data = asyncio.run(run(args.runs, args.delay))
    machine = data["machine"]
    print(f"nproc {machine['nproc']} · {machine['cpu_model']} · {machine['python']}")
    for result in data["results"]:
        report(result)
    if args.json:
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
