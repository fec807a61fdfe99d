"""`/dhanam run api production migrate`: time from Approve to RunTask, and how far the log tail in
the card's thread lags behind the task's log stream.

Starts the sandbox world in this process (redis-server, moto seeded with the Dhanam world, the
Slack emulator, the bot on a real port, the sandbox's task runner writing the task's log lines
through CloudWatch Logs). For each run: alice asks, bob's signed click approves; the time from
sending the click to the bot's RunTask request (a botocore `before-send` hook) is one figure.
The runner records when it wrote each log line; the first Slack write (post or edit of the
progress message) that shows the line gives its lag. The follower polls every `--poll` seconds
(production's default `[rollouts] poll_seconds` is 10; the sandbox console uses 1), so the lag
is about one poll interval plus the calls of one poll.

    .venv/bin/python bench/run_task.py [--runs 5] [--poll 1.0] [--json PATH]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from _common import machine_info, percentile

from approvals.rollout import RolloutSettings
from bot.logs import configure_logging
from bot.wiring import Overrides
from core.settings import LogFormat
from integrations.aws.clients import AwsClients
from sandbox.ecs_tasks import TaskRunner
from sandbox.world import SandboxWorld, buttons_of


@contextmanager
def run_task_times(seen: list[float]) -> Iterator[None]:
    """Record time.monotonic() of every RunTask request the bot sends."""
    original = AwsClients.client

    def client(self: AwsClients, name: str, region: str | None = None) -> Any:
        made = original(self, name, region)
        if name == "ecs" and not getattr(made, "_bench_hooked", False):

            def before_send(request: Any, **_: Any) -> None:
                target = request.headers.get("X-Amz-Target", b"")
                target = target.decode() if isinstance(target, bytes) else str(target)
                if target.endswith(".RunTask"):
                    seen.append(time.monotonic())

            made.meta.events.register("before-send", before_send)
            made._bench_hooked = True
        return made

    AwsClients.client = client  # type: ignore[method-assign]
    try:
        yield
    finally:
        AwsClients.client = original  # type: ignore[method-assign]


class TimedRunner(TaskRunner):
    """The sandbox's runner, noting when each log line went to CloudWatch Logs."""

    written: dict[str, float]

    def _write(self, *args: Any) -> None:
        before = {k: v.lines_written for k, v in self._seen.items()}
        super()._write(*args)
        now = time.monotonic()
        script, due, command = args[4], args[5], args[6]
        for arn, seen in self._seen.items():
            for index in range(before.get(arn, 0), seen.lines_written):
                line = script[index].format(
                    name=command[0] if command else "task", command=" ".join(command[1:])
                )
                self.written.setdefault(f"{arn}|{line}", now)
        del due


async def one_run(world: SandboxWorld, runner: TimedRunner, starts: list[float]) -> dict[str, Any]:
    calls_before = len(world.slack.calls)
    await world.slash("run api production migrate", user="alice")
    await world.settle()
    cards = [m for m in world.slack.messages("C0DEPLOYS") if not m.is_reply and m.blocks]
    card = cards[-1].snapshot()
    approve = next(b for b in buttons_of(card.blocks) if b.label == "Approve")
    count = len(starts)
    clicked = time.monotonic()
    await world.click(card, approve, user="bob")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while "Task succeeded" not in str(
        next(m for m in world.slack.messages("C0DEPLOYS") if m.ts == card.ts).blocks
    ):
        if loop.time() > deadline:
            raise RuntimeError("the task was not reported in 60 s")
        await asyncio.sleep(0.05)
    approve_to_run = (starts[count] - clicked) if len(starts) > count else float("nan")
    lags = []
    for key, written in runner.written.items():
        _, line = key.split("|", 1)
        shown = next(
            (
                c.at
                for c in world.slack.calls[calls_before:]
                if c.method in ("chat.postMessage", "chat.update")
                and c.at >= written
                and line.replace("<", "&lt;").replace(">", "&gt;") in str(c.params.get("text"))
            ),
            None,
        )
        if shown is not None:
            lags.append(shown - written)
    runner.written.clear()
    return {"approve_to_runtask_s": approve_to_run, "lags_s": lags}


async def main_async(runs: int, poll: float) -> dict[str, Any]:
    starts: list[float] = []
    settings = RolloutSettings(
        poll=timedelta(seconds=poll), timeout=timedelta(minutes=5), bake=timedelta(0)
    )
    with run_task_times(starts):
        world = SandboxWorld(
            log_format=LogFormat.JSON,
            overrides=Overrides(rollouts=settings, sweeper=False),
            task_seconds=3.0,
        )
        await world.start()
        try:
            assert world.tasks is not None
            runner = TimedRunner(world.tasks.endpoint_url, world.tasks.region, run_seconds=3.0)
            runner.written = {}
            world.tasks.step = runner.step  # type: ignore[method-assign]
            results = [await one_run(world, runner, starts) for _ in range(runs)]
        finally:
            await world.stop()
    approve = sorted(r["approve_to_runtask_s"] for r in results)
    lags = sorted(lag for r in results for lag in r["lags_s"])
    return {
        "machine": machine_info(),
        "runs": runs,
        "poll_s": poll,
        "approve_to_runtask_ms": {
            "p50": percentile(approve, 50) * 1000,
            "max": approve[-1] * 1000,
        },
        "log_lag_s": {
            "lines": len(lags),
            "p50": percentile(lags, 50),
            "p95": percentile(lags, 95),
            "max": lags[-1] if lags else float("nan"),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    configure_logging(LogFormat.JSON, "WARNING")
    result = asyncio.run(main_async(args.runs, args.poll))
    print(json.dumps(result, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
