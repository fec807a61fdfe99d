"""Socket Mode: the same listeners, reached over a WebSocket from the Slack emulator.

The bot is wired exactly as `dhanam-bot socket` wires it (create_app + Bolt's
AsyncSocketModeHandler with the app-level token); the emulator plays Slack's side of Socket Mode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.app import BOLT, create_app
from core.config import load_config
from core.settings import Settings
from sandbox.signing import slash_command_body
from sandbox.slack_emulator import SANDBOX_BOT_TOKEN, SlackEmulator
from sandbox.world import EXAMPLE_CONFIG


@pytest.fixture
async def socket_bot(redis_url: str) -> AsyncIterator[SlackEmulator]:
    slack = SlackEmulator.dhanam_defaults()
    await slack.start()
    settings = Settings(
        slack_bot_token=SANDBOX_BOT_TOKEN,
        slack_app_token="xapp-1-sandbox",
        slack_api_url=slack.api_url,
        redis_url=redis_url,
        dhanam_config=EXAMPLE_CONFIG,
    )
    app = create_app(settings, load_config(EXAMPLE_CONFIG))
    handler = AsyncSocketModeHandler(app[BOLT], "xapp-1-sandbox")
    await handler.connect_async()  # type: ignore[no-untyped-call]
    await slack.sockets.wait_connected()
    try:
        yield slack
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
        await slack.stop()


def _command(slack: SlackEmulator, text: str) -> dict[str, str]:
    body = slash_command_body(
        text=text,
        user_id="U0ALICE",
        user_name="alice",
        channel_id="C0OPS",
        channel_name="ops",
        response_url=slack.new_response_url("C0OPS", "U0ALICE"),
    )
    return dict(parse_qsl(body))


async def test_help_over_socket_mode(socket_bot: SlackEmulator) -> None:
    ack = await socket_bot.sockets.send("slash_commands", _command(socket_bot, "help deploy"))
    assert ack["response_type"] == "ephemeral"
    assert "/dhanam deploy api production v1.4.2" in str(ack["blocks"])
    assert any(c.method == "apps.connections.open" for c in socket_bot.calls)


async def test_refusal_over_socket_mode(socket_bot: SlackEmulator) -> None:
    ack = await socket_bot.sockets.send(
        "slash_commands", _command(socket_bot, "deploy apii production v1")
    )
    assert 'unknown service "apii"' in ack["text"]
    assert "known: api, web" in ack["text"]


def test_socket_mode_needs_an_app_token() -> None:
    hub = SlackEmulator.dhanam_defaults().sockets
    assert hub.open_connection("http://x", SANDBOX_BOT_TOKEN) == {
        "ok": False,
        "error": "not_allowed_token_type",
    }


def test_http_endpoint_accepts_nothing_without_a_signing_secret() -> None:
    from bot.app import SlackVerifier  # noqa: PLC0415
    from sandbox.signing import sign  # noqa: PLC0415

    headers = sign("any-secret", "text=help")
    assert SlackVerifier(None).valid("text=help", headers) is False
    assert SlackVerifier("any-secret").valid("text=help", headers) is True
