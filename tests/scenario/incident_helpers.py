"""Helpers for the incident scenarios: find the incident's channel and messages, tick boxes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode

from bot.app import DEPS
from commands.incidents.models import Incident
from sandbox.signing import block_actions_body, sign
from sandbox.slack_emulator_models import EmuChannel, EmuMessage
from sandbox.world import USERS, Reply, SandboxWorld


def incident_channels(world: SandboxWorld) -> list[EmuChannel]:
    return [c for c in world.slack.world.channels.values() if c.name.startswith("inc-")]


def only_channel(world: SandboxWorld) -> EmuChannel:
    channels = incident_channels(world)
    assert len(channels) == 1, [c.name for c in channels]
    return channels[0]


async def incident_of(world: SandboxWorld, channel: str) -> Incident:
    incident = await world.app[DEPS].incidents.store.by_channel(channel)
    assert incident is not None
    return incident


def message(world: SandboxWorld, channel: str, ts: str) -> EmuMessage:
    return next(m for m in world.slack.messages(channel) if m.ts == ts)


def card_text(world: SandboxWorld, incident: Incident) -> str:
    return str(message(world, incident.channel, incident.card_ts).blocks)


async def eventually(check: Callable[[], bool], within: float = 8.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def tick_boxes(
    world: SandboxWorld, checklist: EmuMessage, selected: list[str], *, user: str
) -> Reply:
    """A signed block_actions for the checklist's checkboxes, with Slack's selected_options
    (the whole selection after the click, as Slack sends it)."""
    user_id = USERS[user]
    actions = next(b for b in checklist.blocks or [] if b.get("type") == "actions")
    element = actions["elements"][0]
    options = [o for o in element["options"] if o["value"] in selected]
    body = block_actions_body(
        user_id=user_id,
        user_name=user,
        channel_id=checklist.channel,
        channel_name=world.channel_name(checklist.channel),
        message=checklist.to_slack(world.slack.team_id),
        action_id=element["action_id"],
        block_id=actions["block_id"],
        value="",
        button_text="",
        response_url=world.slack.new_response_url(checklist.channel, user_id, checklist.ts),
    )
    payload: dict[str, Any] = json.loads(parse_qs(body)["payload"][0])
    action = payload["actions"][0]
    payload["actions"] = [
        {
            "type": "checkboxes",
            "action_id": action["action_id"],
            "block_id": action["block_id"],
            "selected_options": options,
            "action_ts": action["action_ts"],
        }
    ]
    raw = urlencode({"payload": json.dumps(payload, separators=(",", ":"))})
    return await world.post("/slack/events", raw, sign(world.signing_secret, raw))
