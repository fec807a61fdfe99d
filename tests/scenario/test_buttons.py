"""The one button preamble (commands/buttons.py), through signed clicks on POST /slack/events:
a click reaches its handler with the value read, a value that cannot be read is answered
"This button is broken." with nothing run, and a ChatOpsError is an ephemeral reply."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pytest
from slack_bolt.async_app import AsyncApp

from bot.app import BOLT, DEPS
from commands.buttons import BROKEN, Buttons, Click, register_buttons
from commands.ids import AlarmActionId
from core.errors import ChatOpsError
from core.inflight import InFlight
from sandbox.signing import block_actions_body, sign
from sandbox.world import SandboxWorld


class ProbeId(StrEnum):
    ECHO = "test_probe_echo"
    REFUSE = "test_probe_refuse"


@dataclass(frozen=True)
class ProbeDeps:
    """The probe feature's deps: the app's requests in flight, to see the handler inside."""

    inflight: InFlight


ProbeClick = Click[ProbeDeps, dict[str, Any]]


def probe_buttons(seen: list[ProbeClick]) -> Buttons[ProbeDeps]:
    buttons: Buttons[ProbeDeps] = Buttons()

    @buttons.button(ProbeId.ECHO)
    async def echo(click: ProbeClick) -> None:
        seen.append(click)
        assert click.deps.inflight.count > 0  # the handler runs inside inflight.track()
        await click.reply(f"Echo {click.value['n']} for <@{click.user}>.")

    @buttons.button(ProbeId.REFUSE)
    async def refuse(click: ProbeClick) -> None:
        seen.append(click)
        raise ChatOpsError("The probe refuses. Nothing was changed.")

    return buttons


async def bob_clicks(world: SandboxWorld, action_id: str, value: str) -> int:
    body = block_actions_body(
        user_id="U0BOB",
        user_name="bob",
        channel_id="C0OPS",
        channel_name="ops",
        message={"ts": "1.0", "text": "x", "blocks": []},
        action_id=action_id,
        block_id="b",
        value=value,
        button_text="Go",
        response_url=world.slack.new_response_url("C0OPS", "U0BOB", "1.0"),
    )
    reply = await world.post("/slack/events", body, sign(world.signing_secret, body))
    await world.settle()
    return reply.status


def told_bob(world: SandboxWorld) -> list[str]:
    return [m.text for m in world.slack.ephemerals("U0BOB")]


@pytest.fixture
def seen(world: SandboxWorld) -> list[ProbeClick]:
    clicks: list[ProbeClick] = []
    inflight = world.app[DEPS].inflight
    register_buttons(world.app[BOLT], inflight, probe_buttons(clicks).bind(ProbeDeps(inflight)))
    return clicks


async def test_a_click_reaches_its_handler_with_the_value_read(
    world: SandboxWorld, seen: list[ProbeClick]
) -> None:
    assert await bob_clicks(world, ProbeId.ECHO, json.dumps({"n": 7})) == 200
    assert told_bob(world) == ["Echo 7 for <@U0BOB>."]
    [click] = seen
    assert (click.user, click.channel, click.action_id) == ("U0BOB", "C0OPS", ProbeId.ECHO.value)
    assert click.deps.inflight.count == 0  # and left it when done


@pytest.mark.parametrize("value", ["not json", "[1, 2]", '"a string"', ""])
async def test_an_unreadable_value_is_a_broken_button_and_runs_nothing(
    world: SandboxWorld, seen: list[ProbeClick], value: str
) -> None:
    assert await bob_clicks(world, ProbeId.ECHO, value) == 200
    assert told_bob(world) == [BROKEN]
    assert seen == []


async def test_a_chatops_error_is_an_ephemeral_reply_to_the_clicker(
    world: SandboxWorld, seen: list[ProbeClick]
) -> None:
    assert await bob_clicks(world, ProbeId.REFUSE, "{}") == 200
    assert told_bob(world) == ["The probe refuses. Nothing was changed."]
    # The button's own reply, plain text; not the app's catch-all error handler (which adds
    # blocks with the help hint).
    assert not world.slack.ephemerals("U0BOB")[0].blocks
    assert len(seen) == 1
    assert world.slack.messages("C0OPS") == []  # nothing posted in the channel


async def test_a_broken_rollback_button_opens_no_request(world: SandboxWorld) -> None:
    # A real button: its value names no revision ("to" without ":N").
    value = json.dumps({"service": "api", "env": "production", "to": "api", "alarm": "x"})
    assert await bob_clicks(world, AlarmActionId.ROLLBACK, value) == 200
    assert told_bob(world) == ["This button is broken."]
    assert world.slack.messages("C0OPS") == []


def test_one_action_id_has_one_handler() -> None:
    buttons: Buttons[None] = Buttons()

    async def handler(click: Click[None, dict[str, Any]]) -> None:
        return None

    buttons.button(ProbeId.ECHO)(handler)
    with pytest.raises(ValueError, match="two handlers"):
        buttons.button(ProbeId.ECHO)(handler)
    other: Buttons[None] = Buttons()
    other.button(ProbeId.ECHO)(handler)
    app = AsyncApp(token="xoxb-test", signing_secret="s")
    with pytest.raises(ValueError, match="two handlers"):
        register_buttons(app, InFlight(), buttons.bind(None), other.bind(None))
