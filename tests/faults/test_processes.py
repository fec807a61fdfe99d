"""Fault suite with real processes: three `python -m bot serve` replicas against one Redis,
moto in server mode and the Slack emulator. Requests are signed and sent over HTTP.

moto never completes a rollout: the test completes it through moto's in-process backend
(sandbox.aws_world.complete_rollouts) — the moto server runs in this pytest process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import pytest

from sandbox.aws_world import (
    SANDBOX_AWS_ACCESS_KEY_ID,
    SANDBOX_AWS_SECRET_ACCESS_KEY,
    DhanamWorld,
    complete_rollouts,
)
from sandbox.ecs_tasks import TaskRunner
from sandbox.redis_server import RedisServer
from sandbox.signing import block_actions_body, sign, slash_command_body
from sandbox.slack_emulator import SANDBOX_BOT_TOKEN, SlackEmulator
from sandbox.world import EXAMPLE_CONFIG, buttons_of
from tests.fixtures.secrets import FAULTS_SIGNING_SECRET

ROOT = Path(__file__).resolve().parents[2]
SECRET = FAULTS_SIGNING_SECRET  # scanned for in every log line (tests/fixtures/logs.py)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Replica:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    emulator = SlackEmulator.dhanam_defaults()
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
def fast_config(tmp_path: Path) -> Path:
    text = EXAMPLE_CONFIG.read_text()
    text = text.replace("poll_seconds = 10 ", "poll_seconds = 0.3 ")
    text = text.replace("lease_seconds = 30 ", "lease_seconds = 2 ")
    path = tmp_path / "dhanam.toml"
    path.write_text(text)
    return path


@pytest.fixture
def replicas(
    tmp_path: Path, redis_url: str, aws_world: DhanamWorld, slack: SlackEmulator, fast_config: Path
) -> Iterator[list[Replica]]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DHANAM_"))},
        "SLACK_BOT_TOKEN": SANDBOX_BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.api_url,
        "REDIS_URL": redis_url,
        "DHANAM_CONFIG": str(fast_config),
        "AWS_ENDPOINT_URL": aws_world.endpoint_url,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": SANDBOX_AWS_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SANDBOX_AWS_SECRET_ACCESS_KEY,
        # info: more of the replicas' lines for the session's secret scan (tests/fixtures/logs.py)
        "LOG_LEVEL": "info",
    }
    started: list[Replica] = []
    try:
        for i in range(3):
            port = _free_port()
            log = tmp_path / f"bot-{i}.log"
            process = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                cwd=ROOT,
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
            )
            started.append(Replica(port, process, log))
        yield started
    finally:
        for replica in started:
            if replica.process.poll() is None:
                replica.process.terminate()
        for replica in started:
            try:
                replica.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                replica.process.kill()


async def _wait_healthy(replicas: list[Replica]) -> None:
    async with aiohttp.ClientSession() as session:
        for replica in replicas:
            for _ in range(200):
                try:
                    async with session.get(replica.url + "/health") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(
                    f"replica on {replica.port} never became healthy: "
                    f"{replica.log.read_text()[-2000:]}"
                )


async def _post(url: str, body: str) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/slack/events", data=body, headers=sign(SECRET, body)) as resp,
    ):
        return resp.status


async def _slash(slack: SlackEmulator, replica: Replica, text: str, user: str, name: str) -> int:
    body = slash_command_body(
        text=text,
        user_id=user,
        user_name=name,
        channel_id="C0OPS",
        channel_name="ops",
        response_url=slack.new_response_url("C0OPS", user),
    )
    return await _post(replica.url, body)


async def _approve(slack: SlackEmulator, replica: Replica, card: Any, user: str, name: str) -> int:
    approve = next(b for b in buttons_of(card.blocks) if b.label == "Approve")
    body = block_actions_body(
        user_id=user,
        user_name=name,
        channel_id=card.channel,
        channel_name="deploys",
        message=card.to_slack(slack.team_id),
        action_id=approve.action_id,
        block_id=approve.block_id,
        value=approve.value,
        button_text=approve.label,
        response_url=slack.new_response_url(card.channel, user, card.ts),
    )
    return await _post(replica.url, body)


async def _until(predicate: Any, limit: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


def _card(slack: SlackEmulator) -> Any:
    cards = [m for m in slack.messages("C0DEPLOYS") if not m.is_reply and m.blocks]
    return cards[-1].snapshot() if cards else None


def _card_text(slack: SlackEmulator, ts: str) -> str:
    return str(next(m for m in slack.messages("C0DEPLOYS") if m.ts == ts).blocks)


def _revisions(world: DhanamWorld) -> int:
    ecs = boto3.client("ecs", region_name="us-east-1", endpoint_url=world.endpoint_url)
    return len(ecs.list_task_definitions(familyPrefix="dhanam-api")["taskDefinitionArns"])


async def test_sigkilled_follower_is_taken_over_by_another_process(
    replicas: list[Replica], slack: SlackEmulator, aws_world: DhanamWorld
) -> None:
    await _wait_healthy(replicas)
    first = replicas[0]
    assert await _slash(slack, first, "deploy api production v1.3.0", "U0ALICE", "alice") == 200
    await _until(lambda: _card(slack) is not None)
    card = _card(slack)
    assert await _approve(slack, first, card, "U0BOB", "bob") == 200

    def progress() -> list[Any]:
        return [m for m in slack.thread("C0DEPLOYS", card.ts) if "Rollout of" in m.text]

    await _until(lambda: len(progress()) == 1)
    first.process.send_signal(signal.SIGKILL)  # the follower dies without a word
    first.process.wait(timeout=10)
    edits_before = progress()[0].edited
    # Another process resumes within the lease (2 s) and keeps editing the same message.
    await _until(lambda: progress()[0].edited > edits_before + 2, limit=30)
    await asyncio.to_thread(
        complete_rollouts,
        aws_world.endpoint_url,
        aws_world.region,
        "dhanam-production",
        "dhanam-api",
    )
    await _until(lambda: "Rollout:* completed" in _card_text(slack, card.ts))
    assert len(progress()) == 1  # nothing lost, nothing duplicated
    assert _revisions(aws_world) == 4  # one deploy, executed once


async def test_redis_killed_mid_approval_loses_nothing_and_runs_once(
    replicas: list[Replica],
    slack: SlackEmulator,
    aws_world: DhanamWorld,
    redis_server: RedisServer,
) -> None:
    await _wait_healthy(replicas)
    assert (
        await _slash(slack, replicas[1], "deploy api production v1.3.0", "U0ALICE", "alice") == 200
    )
    await _until(lambda: _card(slack) is not None)
    card = _card(slack)
    await asyncio.to_thread(redis_server.kill)  # SIGKILL: only the AOF survives
    try:
        assert await _approve(slack, replicas[2], card, "U0BOB", "bob") == 200
        await _until(
            lambda: any(
                "approval store did not answer" in m.text for m in slack.ephemerals("U0BOB")
            )
        )
    finally:
        await asyncio.to_thread(redis_server.restart)
    assert _revisions(aws_world) == 3  # nothing ran while Redis was down
    # The request survived the crash: approving now works, on any replica, exactly once.
    statuses = await asyncio.gather(
        *(
            _approve(slack, r, card, user, name)
            for r in replicas[1:]
            for user, name in (("U0BOB", "bob"), ("U0CAROL", "carol"))
        )
    )
    assert all(s == 200 for s in statuses)
    await _until(lambda: "Rolling out" in (t := _card_text(slack, card.ts)) or "Rollout" in t)
    await asyncio.sleep(1.0)
    assert _revisions(aws_world) == 4


async def test_sigkilled_task_follower_is_taken_over_by_another_process(
    replicas: list[Replica], slack: SlackEmulator, aws_world: DhanamWorld
) -> None:
    """`run api production migrate`: the replica following the task is SIGKILLed mid-run;
    another process takes the follow over, keeps editing the same thread message and puts the
    exit code on the card. One task ran."""
    runner = TaskRunner(aws_world.endpoint_url, aws_world.region, run_seconds=1.0)
    migrate = ("pnpm", "db:migrate")
    runner.hanging.add(migrate)  # runs until the test lets it finish

    async def drive() -> None:
        while True:
            await asyncio.to_thread(runner.step)
            await asyncio.sleep(0.2)

    driver = asyncio.create_task(drive())
    try:
        await _wait_healthy(replicas)
        first = replicas[0]
        assert await _slash(slack, first, "run api production migrate", "U0ALICE", "alice") == 200
        await _until(lambda: _card(slack) is not None)
        card = _card(slack)
        assert await _approve(slack, first, card, "U0BOB", "bob") == 200

        def progress() -> list[Any]:
            return [m for m in slack.thread("C0DEPLOYS", card.ts) if "Task migrate" in m.text]

        await _until(lambda: len(progress()) == 1 and "applied" in progress()[0].text)
        first.process.send_signal(signal.SIGKILL)  # the follower dies without a word
        first.process.wait(timeout=10)
        edits_before = progress()[0].edited
        await _until(lambda: progress()[0].edited > edits_before + 2, limit=30)
        runner.hanging.discard(migrate)  # the migration finishes
        await _until(lambda: "Task succeeded" in _card_text(slack, card.ts))
        assert len(progress()) == 1  # the same message, edited by both processes
        ecs = boto3.client("ecs", region_name="us-east-1", endpoint_url=aws_world.endpoint_url)
        stopped = ecs.list_tasks(cluster="dhanam-production", desiredStatus="STOPPED")
        assert len(stopped["taskArns"]) == 1  # one task, started once
    finally:
        driver.cancel()
