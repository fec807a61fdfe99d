"""Alarm storm: K signed SNS notifications over A alarms at concurrency C, into the real bot.

    .venv/bin/python bench/alarm_storm.py                  # K=600, A=40, C=20
    .venv/bin/python bench/alarm_storm.py -k 1200 -a 80 -c 50 --json out.json

The bot, the Slack emulator and a redis-server run on this machine (SandboxWorld, no AWS); the
notifications are CloudWatch alarm messages signed with the sandbox SNS signer and POSTed to
`/webhooks/sns`, in shuffled order (so older states often arrive after newer ones). Reports the
webhook latency, the most Slack writes to one channel in any 1 s window, the top-level messages
created, and whether every alarm's final shown state is its newest one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import machine_info, percentile
from bot.app import DEPS
from bot.logs import configure_logging
from bot.wiring import Overrides
from core.settings import LogFormat
from sandbox.sns_signer import cloudwatch_alarm_message
from sandbox.world import SandboxWorld

TOPIC = "arn:aws:sns:us-east-1:123456789012:dhanam-alarms"
CHANNEL = "C0ALERTS"  # the bench alarms are listed by no service
T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def definition(name: str) -> dict[str, Any]:
    return {
        "AlarmName": name,
        "MetricName": "HTTPCode_Target_5XX_Count",
        "Namespace": "AWS/ApplicationELB",
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": 5.0,
    }


def plan(world: SandboxWorld, k: int, a: int, seed: int) -> tuple[list[str], dict[str, str]]:
    """K signed bodies (shuffled) and each alarm's newest state."""
    names = [f"bench-alarm-{i:03d}" for i in range(a)]
    bodies: list[str] = []
    final: dict[str, str] = {}
    for n in range(k):
        name = names[n % a]
        step = n // a
        state = "ALARM" if step % 2 == 0 else "OK"
        old = "OK" if state == "ALARM" else "ALARM"
        at = T0 + timedelta(seconds=30 * step, milliseconds=n % a)
        message = cloudwatch_alarm_message(
            definition(name), state, old, f"bench step {step}", "us-east-1", "123456789012", now=at
        )
        bodies.append(json.dumps(world.sns.notification(TOPIC, message)))
        final[name] = state
    random.Random(seed).shuffle(bodies)
    return bodies, final


async def deliver(world: SandboxWorld, bodies: list[str], c: int) -> tuple[list[float], int]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    failures = 0
    headers = {"Content-Type": "text/plain; charset=UTF-8"}

    async def worker() -> None:
        nonlocal failures
        while not queue.empty():
            body = queue.get_nowait()
            started = time.perf_counter()
            reply = await asyncio.wait_for(world.post("/webhooks/sns", body, headers), 10)
            latencies.append((time.perf_counter() - started) * 1000)
            if reply.status != 200:
                failures += 1

    await asyncio.gather(*(worker() for _ in range(c)))
    return sorted(latencies), failures


async def shown_state(world: SandboxWorld, name: str) -> str | None:
    record = await world.app[DEPS].alarm_store.get(name)
    if record is None or not record.root_ts:
        return None
    message = next(
        (m for m in world.slack.messages(record.root_channel or CHANNEL) if m.ts == record.root_ts),
        None,
    )
    if message is None:
        return None
    text = json.dumps(message.blocks or [], ensure_ascii=False)
    for state in ("ALARM", "OK"):
        if f"*{name}* — {state}" in text or f"*{state}* · *{name}*" in text:
            return state
    return None


async def run(args: argparse.Namespace) -> dict[str, Any]:
    world = SandboxWorld(aws=False, log_format=LogFormat.JSON, overrides=Overrides())
    await world.start()
    try:
        bodies, final = plan(world, args.k, args.a, args.seed)
        started = time.perf_counter()
        latencies, failures = await deliver(world, bodies, args.c)
        delivered_s = time.perf_counter() - started
        await world.settle_alarms(limit=args.max_seconds)
        drained_s = time.perf_counter() - started
        wrong = [n for n, s in final.items() if await shown_state(world, n) != s]
        roots = [m for m in world.slack.messages(CHANNEL) if not m.is_reply]
        writes = [
            c for c in world.slack.calls if c.method in ("chat.postMessage", "chat.update") and c.ok
        ]
        return {
            "k": args.k,
            "a": args.a,
            "c": args.c,
            "webhook_p50_ms": round(percentile(latencies, 50), 2),
            "webhook_p99_ms": round(percentile(latencies, 99), 2),
            "webhook_failures": failures,
            "delivered_in_s": round(delivered_s, 2),
            "drained_in_s": round(drained_s, 2),
            "max_writes_in_1s": world.slack.max_writes_in_window(CHANNEL, 1.0),
            "slack_writes": len(writes),
            "top_level_messages": len(roots),
            "digests": sum(1 for m in roots if "Alarm storm" in m.text),
            "final_state_right": len(final) - len(wrong),
            "final_state_wrong": wrong,
            # Peak resident memory of this process through the storm: the bot, the Slack
            # emulator and the sender together (Redis is its own process), so one replica's own
            # share is smaller.
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "machine": machine_info(),
        }
    finally:
        await world.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", type=int, default=600, help="notifications")
    parser.add_argument("-a", type=int, default=40, help="alarms")
    parser.add_argument("-c", type=int, default=20, help="concurrent senders")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=300.0, help="drain limit")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    configure_logging(LogFormat.CONSOLE, "warning")
    result = asyncio.run(run(args))
    print(
        f"alarm storm: K={result['k']} notifications over A={result['a']} alarms, C={result['c']}"
    )
    print(
        f"  webhook latency p50 {result['webhook_p50_ms']} ms, p99 {result['webhook_p99_ms']} ms"
        f" ({result['webhook_failures']} non-200); delivered in {result['delivered_in_s']} s"
    )
    print(
        f"  Slack: {result['slack_writes']} writes, at most {result['max_writes_in_1s']} to "
        f"{CHANNEL} in any 1 s window; {result['top_level_messages']} top-level messages "
        f"({result['digests']} digest); drained {result['drained_in_s']} s after the first send"
    )
    print(f"  final state right for {result['final_state_right']}/{result['a']} alarms")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    ok = not result["final_state_wrong"] and not result["webhook_failures"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
