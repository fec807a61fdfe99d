"""Helpers for the sev1 checklist's checks: a bot on moto with `[outage]`, each check limited to
a short time, and reading the checklist message back."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.app import DEPS
from bot.wiring import Overrides
from commands.outage.deps import Wrap
from examples import EXAMPLE_CONFIG
from sandbox.aws_world import DhanamWorld
from sandbox.slack_emulator_models import EmuMessage
from sandbox.world import SandboxWorld, buttons_of
from tests.fixtures.bot import aws_sandbox
from tests.scenario.incident_helpers import incident_of, message, only_channel

LIMIT = 2.0  # seconds each check may take in the tests about slow checks
# …and in the others, where every source answers: generous, so a loaded machine (4 test
# workers on 2 cores) never turns an answering stand-in into "no answer in time".
ANSWERING_LIMIT = 8.0


def config_with_limit(tmp: Path, limit: float = LIMIT) -> Path:
    text = EXAMPLE_CONFIG.read_text()
    text = re.sub(r"check_timeout_seconds = [0-9.]+", f"check_timeout_seconds = {limit}", text)
    path = tmp / "dhanam.toml"
    path.write_text(text)
    return path


@asynccontextmanager
async def outage_bot(
    redis_url: str,
    aws_world: DhanamWorld,
    tmp: Path,
    *,
    wrap: Wrap | None = None,
    limit: float = ANSWERING_LIMIT,
) -> AsyncIterator[SandboxWorld]:
    overrides = Overrides(sweeper=False, outage_checks=wrap)
    async with aws_sandbox(
        redis_url, aws_world, overrides, config_path=config_with_limit(tmp, limit)
    ) as world:
        yield world


def health_clients(world: SandboxWorld) -> list[Any]:
    return [app[DEPS].status.aws.clients.client("health", "us-east-1") for app in world.apps]


async def declared(world: SandboxWorld, title: str = "Everything is down") -> EmuMessage:
    """A sev1 declared by alice; its checklist once the first checks are in."""
    await world.slash(f"incident declare sev1 {title}", user="alice")
    await world.settle()
    channel = only_channel(world)
    incident = await incident_of(world, channel.id)
    return message(world, channel.id, incident.checklist_ts)


def checklist_now(world: SandboxWorld, checklist: EmuMessage) -> EmuMessage:
    return message(world, checklist.channel, checklist.ts)


def steps(checklist: EmuMessage) -> dict[int, str]:
    """Step number -> its section's text (mark, label, evidence, checked time)."""
    found: dict[int, str] = {}
    for block in checklist.blocks or []:
        text = str((block.get("text") or {}).get("text", ""))
        match = re.search(r"\*(\d)\. ", text)
        if block.get("type") == "section" and match:
            found[int(match.group(1))] = text
    return found


def ticked(checklist: EmuMessage) -> list[str]:
    actions = next(b for b in checklist.blocks or [] if b.get("type") == "actions")
    return [o["value"] for o in actions["elements"][0].get("initial_options", [])]


async def click(world: SandboxWorld, checklist: EmuMessage, label: str, user: str) -> None:
    current = checklist_now(world, checklist)
    button = next(b for b in buttons_of(current.blocks or []) if b.label == label)
    reply = await world.click(current, button, user=user)
    assert reply.status == 200
    await world.settle()
