"""The sev1 checklist filling itself in with every source slowed by DELAY seconds: the seven
checks run side by side, so the checklist costs about the slowest check, not their sum.

Starts the sandbox world in this process (redis-server, moto seeded with the Dhanam world, the
Slack emulator, the DNS stand-in, the bot on a real port), then declares sev1 incidents one at a
time with signed `/dhanam incident declare sev1 …` requests and times, for each, from the POST
to (a) the declare's own ephemeral reply and (b) the checklist message edited with every step's
result. Two ways of slowing the sources:

- `check`: each of the seven checks waits DELAY seconds before it reads anything (the
  `Overrides.outage_checks` seam): the floor is one DELAY;
- `source`: every AWS HTTP request the bot sends waits DELAY seconds (a botocore `before-send`
  hook, as bench/status.py), the DNS stand-in answers after DELAY, AWS Health after DELAY. A
  check that chains calls pays DELAY per call: the logs step's FilterLogEvents slices, after
  DescribeServices (the group it logged to last is read meanwhile) and, for a revision not seen
  before, DescribeTaskDefinition. Runs first, so its first run is the bot's first look.

    .venv/bin/python bench/checklist.py [--runs 3] [--delay 1.0] [--json PATH]

Each check's limit is raised to 15 s for the run (`[outage] check_timeout_seconds`), so a slow
source is measured rather than cut off.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import logging
import re
import tempfile
import time
from collections import Counter
from typing import Any

from _common import machine_info, percentile

from bot.app import DEPS
from bot.logs import configure_logging
from bot.wiring import Overrides
from commands.outage.models import Check, Finding
from core.settings import LogFormat
from examples import EXAMPLE_CONFIG
from integrations.aws.clients import AwsClients
from sandbox.world import SandboxWorld

LIMIT = 15.0
FILL_TIMEOUT = 60.0


def _config(tmp: Path) -> Path:
    text = re.sub(
        r"check_timeout_seconds = [0-9.]+",
        f"check_timeout_seconds = {LIMIT}",
        EXAMPLE_CONFIG.read_text(),
    )
    path = tmp / "dhanam.toml"
    path.write_text(text)
    return path


SLOW = {"checks": 0.0, "aws": 0.0}  # seconds, set per mode


def _slowed(checks: dict[str, Check]) -> dict[str, Check]:
    """Each check waits SLOW["checks"] before it reads anything."""

    def slow(check: Check) -> Check:
        async def run() -> Finding:
            await asyncio.sleep(SLOW["checks"])
            return await check()

        return run

    return {step: slow(check) for step, check in checks.items()}


def _slow_aws() -> None:
    """Every boto3 client the bot makes sleeps SLOW["aws"] before each HTTP request."""
    original = AwsClients.client

    def client(self: AwsClients, name: str, region: str | None = None) -> Any:
        made = original(self, name, region)
        if not getattr(made, "_bench_slow", False):
            made.meta.events.register("before-send", lambda **_: time.sleep(SLOW["aws"]))
            made._bench_slow = True
        return made

    AwsClients.client = client  # type: ignore[method-assign]


async def one(world: SandboxWorld, n: str) -> dict[str, Any]:
    replies = len(world.slack.ephemerals("U0ALICE"))
    started = time.perf_counter()
    reply = await world.slash(f"incident declare sev1 bench outage {n}", user="alice")
    if reply.status != 200:
        raise RuntimeError(f"the bot answered HTTP {reply.status}")
    answered = filled = None
    deadline = started + FILL_TIMEOUT
    store = world.app[DEPS].incidents.store
    incident = None
    while filled is None:
        if time.perf_counter() > deadline:
            raise RuntimeError("the checklist did not fill in")
        if answered is None and len(world.slack.ephemerals("U0ALICE")) > replies:
            answered = time.perf_counter() - started
        channel = next(
            (c for c in world.slack.world.channels.values() if c.name.endswith(f"outage-{n}")),
            None,
        )
        if channel is not None and (incident is None or not incident.checklist_ts):
            incident = await store.by_channel(channel.id)
        if incident is not None and incident.checklist_ts:
            found = next(
                (
                    m
                    for m in world.slack.messages(incident.channel)
                    if m.ts == incident.checklist_ts
                ),
                None,
            )
            if found is not None and " · checked " in str(found.blocks or []):
                filled = time.perf_counter() - started
        await asyncio.sleep(0.005)
    assert incident is not None
    diagnosis = await store.checklist.diagnosis(incident.id)
    per_check = {step: r.ms / 1000 for step, r in diagnosis.results.items()}
    verdicts = Counter(r.verdict.value for r in diagnosis.results.values())
    await world.settle()
    return {
        "declare_reply_s": round(answered or filled, 3),
        "filled_s": round(filled, 3),
        "engine_s": round(diagnosis.run_ms / 1000, 3),
        "slowest_check_s": round(max(per_check.values()), 3),
        "sum_of_checks_s": round(sum(per_check.values()), 3),
        "per_check_s": {k: round(v, 3) for k, v in per_check.items()},
        "verdicts": dict(verdicts),
    }


async def measure(world: SandboxWorld, mode: str, runs: int, delay: float) -> dict[str, Any]:
    assert world.outage.dns is not None
    SLOW["checks"] = delay if mode == "check" else 0.0
    SLOW["aws"] = delay if mode == "source" else 0.0
    world.outage.dns.delay = world.outage.health.delay = SLOW["aws"]
    samples = [await one(world, f"{mode}-{n}") for n in range(runs)]
    filled = sorted(s["filled_s"] for s in samples)
    return {
        "mode": mode,
        "runs": runs,
        "delay_s": delay,
        "filled_p50_s": round(percentile(filled, 50), 3),
        "filled_max_s": round(filled[-1], 3),
        "declare_reply_p50_s": round(
            percentile(sorted(s["declare_reply_s"] for s in samples), 50), 3
        ),
        "sum_of_checks_p50_s": round(
            percentile(sorted(s["sum_of_checks_s"] for s in samples), 50), 3
        ),
        "samples": samples,
    }


def report(result: dict[str, Any]) -> None:
    print(f"\nmode {result['mode']}: every source +{result['delay_s']} s, {result['runs']} runs")
    for sample in result["samples"]:
        checks = " ".join(f"{k}={v:.2f}" for k, v in sample["per_check_s"].items())
        print(
            f"  declare reply {sample['declare_reply_s']:.3f} s · checklist filled "
            f"{sample['filled_s']:.3f} s (checks {sample['engine_s']:.3f} s, sum "
            f"{sample['sum_of_checks_s']:.3f} s) · {sample['verdicts']}\n    {checks}"
        )
    print(
        f"  filled p50 {result['filled_p50_s']:.3f} s, max {result['filled_max_s']:.3f} s; "
        f"the checks one after another: {result['sum_of_checks_p50_s']:.3f} s"
    )


async def run(runs: int, delay: float) -> dict[str, Any]:
    _slow_aws()
    with tempfile.TemporaryDirectory() as tmp:
        world = SandboxWorld(
            config_path=_config(Path(tmp)),
            log_format=LogFormat.JSON,
            overrides=Overrides(sweeper=False, outage_checks=_slowed),
        )
        await world.start()
        try:
            results = [await measure(world, mode, runs, delay) for mode in ("source", "check")]
        finally:
            await world.stop()
    return {"machine": machine_info(), "results": results}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--delay", type=float, default=1.0, help="seconds added to every source")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    configure_logging(LogFormat.JSON, "error")
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
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
