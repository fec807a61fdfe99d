"""Ack latency of ``/dhanam help``: the bot against a bare slack-bolt app (the framework floor).

Starts redis-server, the Slack emulator (its own process), the bot
(``python -m bot serve``) and ``bench/bare_bolt.py``, each a separate process on 127.0.0.1.
Then, for each target in turn (never both at once), sends N pre-signed slash-command
requests from C closed-loop workers over one aiohttp session (``TCPConnector(limit=C)``,
keep-alive), and reports p50/p99 latency, requests/s and the bot/bare ratios.

    .venv/bin/python bench/ack_latency.py [--requests 2000] [--concurrency 50] [--json PATH]

Exits 1 if any request (warm-up included) failed: non-200, or a bot reply without the help
text.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from _common import (
    PYTHON,
    REPO,
    Child,
    ChildError,
    emulator_calls,
    machine_info,
    percentile,
    raise_on_sigterm,
    ratio,
)
from _common import free_port as _free_port
from slack_bolt import version as bolt_version

from sandbox.redis_server import RedisServer, RedisServerError
from sandbox.signing import sign, slash_command_body
from sandbox.slack_emulator import SANDBOX_BOT_TOKEN

WARMUP = 100
BOLT_VERSION = bolt_version.__version__
REQUEST_TIMEOUT = 10.0  # seconds, per request
HELP_MARKER = "deploy"  # the help text lists the deploy command
CONFIG = "examples/dhanam.example.toml"
USERS = [("U0ALICE", "alice"), ("U0BOB", "bob"), ("U0CAROL", "carol"), ("U0DAVE", "dave")]


@dataclass
class Target:
    name: str
    url: str  # POST endpoint
    expect: str | None  # substring every 200 body must contain


@dataclass
class RunResult:
    target: str
    round: int
    requests: int
    ok: int
    errors: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    rps: float
    error_kinds: dict[str, int] = field(default_factory=dict)


def build_requests(
    count: int, secret: str, response_base: str
) -> list[tuple[bytes, dict[str, str]]]:
    """``count`` distinct ``/dhanam help`` bodies, each signed now with its own headers."""
    out: list[tuple[bytes, dict[str, str]]] = []
    for i in range(count):
        user_id, user_name = USERS[i % len(USERS)]
        body = slash_command_body(
            text="help",
            user_id=user_id,
            user_name=user_name,
            channel_id="C0OPS",
            channel_name="ops",
            response_url=f"{response_base}/response/bench{i}-{secrets.token_hex(4)}",
        )
        out.append((body.encode(), sign(secret, body)))
    return out


async def load(
    target: Target,
    requests: list[tuple[bytes, dict[str, str]]],
    concurrency: int,
    max_seconds: float,
    round_no: int,
) -> RunResult:
    """Send every request once from ``concurrency`` workers; time each one."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    next_index = 0
    deadline = time.monotonic() + max_seconds
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)

    def fail(kind: str) -> None:
        errors[kind] = errors.get(kind, 0) + 1

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal next_index
        while next_index < len(requests):
            if time.monotonic() > deadline:
                return
            body, headers = requests[next_index]
            next_index += 1
            started = time.perf_counter()
            try:
                async with session.post(target.url, data=body, headers=headers) as resp:
                    payload = await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                fail(type(exc).__name__)
                continue
            elapsed = time.perf_counter() - started
            if status != 200:
                fail(f"http_{status}")
            elif target.expect is not None and target.expect not in payload.decode(
                "utf-8", "replace"
            ):
                fail("missing_help_text")
            else:
                latencies.append(elapsed * 1000.0)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        began = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        seconds = time.perf_counter() - began
    unsent = len(requests) - next_index
    if unsent:
        errors["not_sent_time_limit"] = unsent
    latencies.sort()
    ok = len(latencies)
    return RunResult(
        target=target.name,
        round=round_no,
        requests=len(requests),
        ok=ok,
        errors=len(requests) - ok,
        seconds=round(seconds, 3),
        p50_ms=round(percentile(latencies, 50), 3),
        p90_ms=round(percentile(latencies, 90), 3),
        p99_ms=round(percentile(latencies, 99), 3),
        mean_ms=round(statistics.fmean(latencies), 3) if latencies else math.nan,
        max_ms=round(latencies[-1], 3) if latencies else math.nan,
        rps=round(ok / seconds, 1) if seconds > 0 else math.nan,
        error_kinds=errors,
    )


async def measure(
    targets: list[Target],
    secret: str,
    response_base: str,
    n: int,
    concurrency: int,
    rounds: int,
    max_seconds: float,
) -> tuple[list[RunResult], dict[str, RunResult]]:
    warmups: dict[str, RunResult] = {}
    for target in targets:
        # One request alone first, so Bolt's auth.test runs once and is cached before any
        # concurrency (concurrent first requests would each call it); then the rest.
        first = await load(target, build_requests(1, secret, response_base), 1, max_seconds, 0)
        reqs = build_requests(WARMUP - 1, secret, response_base)
        rest = await load(target, reqs, min(concurrency, WARMUP - 1), max_seconds, 0)
        rest.requests += first.requests
        rest.ok += first.ok
        rest.errors += first.errors
        for kind, count in first.error_kinds.items():
            rest.error_kinds[kind] = rest.error_kinds.get(kind, 0) + count
        warmups[target.name] = rest
    results: list[RunResult] = []
    for round_no in range(1, rounds + 1):
        order = targets if round_no % 2 == 1 else list(reversed(targets))
        for target in order:
            reqs = build_requests(n, secret, response_base)  # signed just before the run
            result = await load(target, reqs, concurrency, max_seconds, round_no)
            results.append(result)
            print(
                f"  round {round_no} {target.name:<9} p50 {result.p50_ms:7.2f} ms  "
                f"p99 {result.p99_ms:7.2f} ms  {result.rps:8.1f} req/s  "
                f"errors {result.errors}",
                flush=True,
            )
    return results, warmups


def best(results: list[RunResult], name: str) -> RunResult:
    """The round with the highest throughput for this target (its p50/p99 go with it)."""
    mine = [r for r in results if r.target == name]
    return max(mine, key=lambda r: (r.rps if not math.isnan(r.rps) else -1.0, -r.p50_ms))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per run (2000)")
    parser.add_argument("--concurrency", type=int, default=50, help="parallel workers (50)")
    parser.add_argument("--rounds", type=int, default=2, help="runs per target, order alternated")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="time cap per run")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= 100_000:
        parser.error("--requests must be 1..100000")
    if not 1 <= args.concurrency <= 1000:
        parser.error("--concurrency must be 1..1000")
    if not 1 <= args.rounds <= 10:
        parser.error("--rounds must be 1..10")
    return args


def report(
    args: argparse.Namespace,
    machine: dict[str, Any],
    results: list[RunResult],
    warmups: dict[str, RunResult],
    slack_calls: dict[str, int] | None,
) -> dict[str, Any]:
    bot, bare = best(results, "bot"), best(results, "bare_bolt")
    ratios = {
        "p50": round(ratio(bot.p50_ms, bare.p50_ms), 2),
        "p99": round(ratio(bot.p99_ms, bare.p99_ms), 2),
        "rps": round(ratio(bot.rps, bare.rps), 2),
    }
    total_errors = sum(r.errors for r in results) + sum(w.errors for w in warmups.values())
    selection = f"best of {args.rounds} round(s) per target by requests/s"
    print()
    print(f"ack latency, /dhanam help: {args.requests} requests, concurrency {args.concurrency}")
    cpu, py = machine["cpu_model"], machine["python"]
    print(f"machine: nproc={machine['nproc']}, cpu={cpu}, python={py}")
    print(
        f"note: the {machine['nproc']} CPU(s) are shared by the load generator, the target "
        "server, the Slack emulator and redis-server; the two targets are loaded one at a time"
    )
    calls = ", ".join(f"{m}={c}" for m, c in (slack_calls or {}).items()) or "none"
    if slack_calls is None:
        calls = "unknown"
    print(f"Slack emulator: separate process; Web API calls it served in the whole run: {calls}")
    print(f"warm-up: {WARMUP} requests per target; reported: {selection}")
    print(
        f"note: slack-bolt {BOLT_VERSION} acks through its asyncio listener runner, which polls "
        "for ack() with asyncio.sleep(0.01): ~10 ms is the floor for both targets"
    )
    print()
    print(f"{'target':<10} {'p50 ms':>9} {'p99 ms':>9} {'req/s':>9} {'errors':>7}")
    for row in (bot, bare):
        errs = sum(r.errors for r in results if r.target == row.target)
        errs += warmups[row.target].errors
        print(f"{row.target:<10} {row.p50_ms:>9.2f} {row.p99_ms:>9.2f} {row.rps:>9.1f} {errs:>7}")
    r50, r99, rrps = ratios["p50"], ratios["p99"], ratios["rps"]
    print(f"{'bot/bare':<10} {r50:>8.2f}x {r99:>8.2f}x {rrps:>8.2f}x")
    if total_errors:
        print(f"\nFAILED: {total_errors} request(s) failed")
        for r in [*warmups.values(), *results]:
            if r.error_kinds:
                print(f"  {r.target} round {r.round or 'warm-up'}: {r.error_kinds}")
    return {
        "benchmark": "ack_latency",
        "command": "/dhanam help",
        "requests": args.requests,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "warmup": WARMUP,
        "selection": selection,
        "slack_bolt": BOLT_VERSION,
        "emulator": "subprocess",
        "emulator_calls": slack_calls,
        "machine": machine,
        "bot": {"p50_ms": bot.p50_ms, "p99_ms": bot.p99_ms, "rps": bot.rps, "round": bot.round},
        "bare_bolt": {
            "p50_ms": bare.p50_ms,
            "p99_ms": bare.p99_ms,
            "rps": bare.rps,
            "round": bare.round,
        },
        "ratio_bot_over_bare": ratios,
        "errors": total_errors,
        "ok": total_errors == 0,
        "runs": [asdict(r) for r in results],
        "warmups": [asdict(w) for w in warmups.values()],
    }


def no_nan(value: Any) -> Any:
    """NaN (no successful request) as null, so the file is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [no_nan(v) for v in value]
    return value


def check_alive(children: list[Child]) -> None:
    for child in children:
        if not child.alive():
            raise ChildError(f"{child.name} died during the run:\n{child.tail()}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_on_sigterm()
    machine = machine_info()
    secret = secrets.token_hex(16)
    log_dir = Path(tempfile.mkdtemp(prefix="dhanam-bench-"))
    redis = RedisServer()
    children: list[Child] = []
    failed = True
    try:
        print("starting redis-server, Slack emulator, bot and bare Bolt app ...", flush=True)
        redis.start()
        emulator = Child(
            "emulator", [PYTHON, str(REPO / "bench/_common.py"), "emulator"],
            log_dir=log_dir, capture_stdout=True,
        )  # fmt: skip
        children.append(emulator)
        emulator.start()
        api_url = emulator.read_line()
        emu_base = api_url.removesuffix("/").removesuffix("/api")
        bot_port, bare_port = _free_port(), _free_port()
        bot = Child(
            "bot",
            [PYTHON, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(bot_port)],
            env={
                "SLACK_BOT_TOKEN": SANDBOX_BOT_TOKEN,
                "SLACK_SIGNING_SECRET": secret,
                "SLACK_API_URL": api_url,
                "REDIS_URL": redis.url,
                "DHANAM_CONFIG": CONFIG,
                "LOG_LEVEL": "warning",
            },
            log_dir=log_dir,
        )
        bare = Child(
            "bare_bolt",
            [PYTHON, str(REPO / "bench/bare_bolt.py"), "--port", str(bare_port),
             "--api-url", api_url, "--token", SANDBOX_BOT_TOKEN],
            env={"SLACK_SIGNING_SECRET": secret},
            log_dir=log_dir,
        )  # fmt: skip
        children += [bot, bare]
        bot.start()
        bare.start()
        bot.wait_healthy(f"http://127.0.0.1:{bot_port}/health")
        bare.wait_healthy(f"http://127.0.0.1:{bare_port}/health")
        targets = [
            Target("bot", f"http://127.0.0.1:{bot_port}/slack/events", HELP_MARKER),
            Target("bare_bolt", f"http://127.0.0.1:{bare_port}/slack/events", None),
        ]
        print(f"measuring ({args.rounds} round(s), order alternates) ...", flush=True)
        results, warmups = asyncio.run(
            measure(
                targets, secret, emu_base, args.requests, args.concurrency,
                args.rounds, args.max_seconds,
            )
        )  # fmt: skip
        check_alive(children)
        emulator.stop()  # its call counts show what the targets asked of Slack
        figures = report(args, machine, results, warmups, emulator_calls(emulator))
        if args.json is not None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(no_nan(figures), indent=2) + "\n")
            print(f"\nwrote {args.json}")
        failed = not figures["ok"]
    except (ChildError, RedisServerError) as exc:
        print(f"ack_latency: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nack_latency: interrupted", file=sys.stderr)
    finally:
        for child in reversed(children):
            child.stop()
        redis.stop()
        if failed:
            print(f"ack_latency: child logs kept in {log_dir}", file=sys.stderr)
        else:
            shutil.rmtree(log_dir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
