"""Fault test with real processes: the outbox owner is SIGKILLed after it moved an alarm to its
`processing` list (LMOVE) and before the Slack write. Another `python -m bot serve` process
takes the lease over when it expires, puts the held item back and writes it: the alarm reaches
Slack exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from integrations.slack.outbox import NAMESPACE
from sandbox.slack_emulator import SANDBOX_BOT_TOKEN, SlackEmulator
from sandbox.sns_signer import SnsSigner, cloudwatch_alarm_message
from sandbox.world import EXAMPLE_CONFIG
from tests.scenario.alarm_support import T0, TOPIC, alarm_definition

ROOT = Path(__file__).resolve().parents[2]
ALARM = "dhanam-batch-queue-depth"  # listed by no service: C0ALERTS
QUEUE = f"{NAMESPACE}:C0ALERTS"
PROCESSING = QUEUE + ":processing"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    emulator = SlackEmulator.dhanam_defaults()
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
def signer(tmp_path: Path) -> SnsSigner:
    return SnsSigner(tmp_path / "sns-certs")


@pytest.fixture
def processes(
    tmp_path: Path, redis_url: str, slack: SlackEmulator, signer: SnsSigner
) -> Iterator[list[tuple[str, subprocess.Popen[bytes]]]]:
    config = EXAMPLE_CONFIG  # the background loop (and its outbox recovery sweep) ticks each 15 s
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DHANAM_", "AWS_"))},
        "SLACK_BOT_TOKEN": SANDBOX_BOT_TOKEN,
        "SLACK_SIGNING_SECRET": "outbox-owner-secret",
        "SLACK_API_URL": slack.api_url,
        "REDIS_URL": redis_url,
        "DHANAM_CONFIG": str(config),
        "SNS_CERT_CACHE_DIR": str(signer.cert_path.parent),
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_free_port()}",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "LOG_LEVEL": "warning",
    }
    started: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for i in range(2):
            port = _free_port()
            log = (tmp_path / f"bot-{i}.log").open("wb")
            process = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            started.append((f"http://127.0.0.1:{port}", process))
        yield started
    finally:
        for _, process in started:
            if process.poll() is None:
                process.terminate()
        for _, process in started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


async def _healthy(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(url + "/health") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never became healthy")


async def _until(predicate: Any, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def test_sigkilled_outbox_owner_between_lmove_and_write_loses_no_alarm(
    processes: list[tuple[str, subprocess.Popen[bytes]]],
    slack: SlackEmulator,
    signer: SnsSigner,
    redis_url: str,
) -> None:
    for url, _ in processes:
        await _healthy(url)
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        # The channel's last write "ends" 6 s from now: the owner takes the item (LMOVE) and
        # then waits for its slot — the window in which it is killed.
        await redis.set(QUEUE + ":last", int((time.time() + 6) * 1000), ex=60)
        message = cloudwatch_alarm_message(
            alarm_definition(ALARM), "ALARM", "OK", "Threshold Crossed", "us-east-1",
            "123456789012", now=T0,
        )  # fmt: skip
        body = json.dumps(signer.notification(TOPIC, message, f'ALARM: "{ALARM}"'))
        owner_url, owner = processes[0]
        async with (
            aiohttp.ClientSession() as session,
            session.post(owner_url + "/webhooks/sns", data=body) as resp,
        ):
            assert resp.status == 200, await resp.text()

        async def held() -> bool:
            return bool(await redis.lrange(PROCESSING, 0, -1))

        await _until(held, limit=5)
        assert await redis.llen(QUEUE) == 0  # moved, not copied
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)
        assert [m for m in slack.messages("C0ALERTS") if not m.is_reply] == []

        # The survivor's recovery sweep finds the held item once the dead owner's lease ends.
        async def posted() -> bool:
            return any(not m.is_reply for m in slack.messages("C0ALERTS"))

        await _until(posted, limit=45)
        await asyncio.sleep(1.0)
        roots = [m for m in slack.messages("C0ALERTS") if not m.is_reply]
        assert len(roots) == 1
        assert ALARM in roots[0].text
        assert await redis.llen(PROCESSING) == 0
        assert await redis.llen(QUEUE) == 0
    finally:
        await redis.aclose()
