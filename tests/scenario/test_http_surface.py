"""Scenario: the HTTP surface — health, metrics, limits, JSON errors, Redis outage and recovery."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError

from bot import slack_app
from bot.app import BOLT
from sandbox.redis_server import RedisServer
from sandbox.signing import (
    block_actions_body,
    event_callback_body,
    sign,
    view_submission_body,
)
from sandbox.slack_emulator import RESPONSE_URL_METHOD, WRITE_METHODS
from sandbox.world import SandboxWorld


async def _get(world: SandboxWorld, path: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(world.bot_url + path) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


async def test_health_is_200_when_redis_answers(world: SandboxWorld) -> None:
    status, content_type, body = await _get(world, "/health")
    assert status == 200
    assert content_type.startswith("application/json")
    data = json.loads(body)
    assert data["status"] == "healthy"
    assert data["checks"]["redis"]["ok"] is True


async def test_redis_outage_gives_503_and_recovers_without_restart(
    world: SandboxWorld, redis_server: RedisServer
) -> None:
    assert (await _get(world, "/health"))[0] == 200
    await asyncio.to_thread(redis_server.kill)
    status, _, body = await _get(world, "/health")
    assert status == 503
    data = json.loads(body)
    assert data["status"] == "unhealthy"
    assert data["checks"]["redis"]["ok"] is False
    assert data["checks"]["redis"]["error"]
    # The bot keeps serving commands that do not need Redis while it is down.
    assert (await world.slash("help")).status == 200
    await asyncio.to_thread(redis_server.restart)
    for _ in range(50):
        status, _, _ = await _get(world, "/health")
        if status == 200:
            break
        await asyncio.sleep(0.1)
    assert status == 200


async def test_metrics_count_requests_and_commands(world: SandboxWorld) -> None:
    await world.slash("help")
    await world.slash("deploy apii production v1")
    status, content_type, body = await _get(world, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain")
    assert (
        'dhanam_http_requests_total{method="POST",route="/slack/events",status="200"} 2.0' in body
    )
    assert 'dhanam_command_duration_seconds_count{command="help",outcome="ok"} 1.0' in body
    assert 'dhanam_command_duration_seconds_count{command="invalid",outcome="refused"} 1.0' in body


async def test_slack_api_errors_are_counted(world: SandboxWorld) -> None:
    client = world.app[BOLT].client
    world.slack.inject(500, method="chat.postMessage", count=10)
    with pytest.raises(SlackApiError):
        await client.chat_postMessage(channel="C0OPS", text="x")
    _, _, body = await _get(world, "/metrics")
    assert 'dhanam_slack_api_errors_total{error="' in body
    assert 'method="chat.postMessage"' in body


async def test_body_over_1_mib_is_413_json(world: SandboxWorld) -> None:
    body = "text=" + "x" * (1024 * 1024 + 10)
    reply = await world.post("/slack/events", body, sign(world.signing_secret, body))
    assert reply.status == 413
    assert reply.body["error"] == "payload_too_large"


async def test_unknown_route_and_method_are_json(world: SandboxWorld) -> None:
    status, _, body = await _get(world, "/nope")
    assert status == 404
    assert json.loads(body)["error"] == "not_found"
    status, _, body = await _get(world, "/slack/events")
    assert status == 405
    assert json.loads(body)["error"] == "method_not_allowed"


async def test_webhooks_refuse_unverified_bodies(world: SandboxWorld) -> None:
    # /webhooks/pagerduty: tests/scenario/test_incident_pagerduty.py (403s);
    # /webhooks/sns: tests/scenario/test_sns_webhook.py (every sample, 400s and 403s).
    reply = await world.post("/webhooks/sns", "{}", {"Content-Type": "text/plain"})
    assert reply.status == 400
    assert reply.body["error"] == "bad_request"


async def test_signed_but_malformed_bodies_are_4xx_never_500(world: SandboxWorld) -> None:
    bodies = [
        ("payload=%7Bnot-json", "application/x-www-form-urlencoded"),
        ("payload=", "application/x-www-form-urlencoded"),
        ("{not json", "application/json"),
        ("", "application/x-www-form-urlencoded"),
        ("\u00e9\u00e8", "text/plain"),
        ("payload=%5B1%2C2%5D", "application/x-www-form-urlencoded"),
        ("payload=%22str%22", "application/x-www-form-urlencoded"),
    ]
    for body, content_type in bodies:
        reply = await world.post(
            "/slack/events", body, sign(world.signing_secret, body, content_type=content_type)
        )
        assert 400 <= reply.status < 500, (body, reply)
        assert isinstance(reply.body, dict), (body, reply)
        assert "error" in reply.body, (body, reply)


async def test_invalid_utf8_is_400(world: SandboxWorld) -> None:
    raw = b"text=\xff\xfe"
    timestamp = str(int(time.time()))
    digest = hmac.new(
        world.signing_secret.encode(), b"v0:" + timestamp.encode() + b":" + raw, hashlib.sha256
    )
    headers = {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": "v0=" + digest.hexdigest(),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(world.bot_url + "/slack/events", data=raw, headers=headers) as resp,
    ):
        assert resp.status == 400
        assert (await resp.json())["error"] == "bad_request"


class _Log:
    """Stands in for a module's structlog logger: what it logged, whatever logging is set up."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Callable[..., None]:
        def record(event: str, **fields: Any) -> None:
            self.lines.append((level, event, fields))

        return record


def _slack_writes(world: SandboxWorld) -> list[str]:
    writing = WRITE_METHODS | {RESPONSE_URL_METHOD}
    return [
        c.method
        for c in world.slack.calls
        if c.method in writing or c.method.startswith(("chat.", "views.", "conversations."))
    ]


def _unknown_button(world: SandboxWorld) -> str:
    return block_actions_body(
        user_id="U0BOB",
        user_name="bob",
        channel_id="C0OPS",
        channel_name="ops",
        message={"ts": "1.0", "text": "x", "blocks": []},
        action_id="unknown_action",
        block_id="b",
        value="v",
        button_text="Go",
        response_url=world.slack.new_response_url("C0OPS", "U0BOB"),
    )


async def test_signed_requests_no_listener_takes_are_an_empty_200(
    world: SandboxWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Slack retries an event delivery answered non-2xx and shows a warning for an interaction:
    # a signed, well-formed request the bot does not handle is acknowledged and nothing is done.
    reaction = event_callback_body(
        {
            "type": "reaction_added",
            "user": "U0BOB",
            "reaction": "eyes",
            "item": {"type": "message", "channel": "C0OPS", "ts": "1.0"},
            "event_ts": "1.1",
        }
    )
    view = view_submission_body(
        user_id="U0BOB",
        user_name="bob",
        view={"callback_id": "not_ours", "blocks": []},
        values={},
    )
    log = _Log()
    monkeypatch.setattr(slack_app, "log", log)
    event = await world.post(
        "/slack/events",
        reaction,
        sign(world.signing_secret, reaction, content_type="application/json"),
    )
    button = _unknown_button(world)
    click = await world.post("/slack/events", button, sign(world.signing_secret, button))
    submitted = await world.post("/slack/events", view, sign(world.signing_secret, view))
    assert (event.status, event.body) == (200, {})
    assert (click.status, click.body) == (200, {})
    assert (submitted.status, submitted.body) == (200, {})
    assert _slack_writes(world) == []
    assert world.slack.calls_to(RESPONSE_URL_METHOD) == []
    assert [(level, event) for level, event, _ in log.lines] == [("info", "slack.unhandled")] * 3
    seen = [(f["type"], f["event_type"], f["action_id"], f["callback_id"]) for _, _, f in log.lines]
    assert seen == [
        ("event_callback", "reaction_added", None, None),
        ("block_actions", None, "unknown_action", None),
        ("view_submission", None, None, "not_ours"),
    ]
    for _, _, fields in log.lines:  # what it was, never its content
        assert not {"body", "token", "response_url", "trigger_id"} & fields.keys()


async def test_unsigned_unhandled_requests_are_still_401(world: SandboxWorld) -> None:
    reaction = event_callback_body({"type": "reaction_added", "user": "U0BOB", "event_ts": "1.1"})
    button = _unknown_button(world)
    unsigned = [
        (reaction, {"Content-Type": "application/json"}),
        (button, {"Content-Type": "application/x-www-form-urlencoded"}),
        (button, sign("not-" + world.signing_secret, button)),
        (reaction, sign(world.signing_secret, reaction, int(time.time()) - 301)),
    ]
    for body, headers in unsigned:
        reply = await world.post("/slack/events", body, headers)
        assert reply.status == 401, (body, reply)
        assert reply.body["error"] == "unauthorized"
    assert _slack_writes(world) == []


async def test_request_id_is_echoed(world: SandboxWorld) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(world.bot_url + "/health", headers={"X-Request-Id": "abc123"}) as resp,
    ):
        assert resp.headers["X-Request-Id"] == "abc123"


async def test_slack_event_retries_are_processed_once(world: SandboxWorld) -> None:
    body = event_callback_body(
        {"type": "app_mention", "user": "U0BOB", "text": "hi", "channel": "C0OPS", "ts": "1.1"},
        event_id="Ev0RETRY01",
    )
    first = await world.post(
        "/slack/events", body, sign(world.signing_secret, body, content_type="application/json")
    )
    assert first.status < 500
    headers = sign(world.signing_secret, body, content_type="application/json")
    headers |= {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    retry = await world.post("/slack/events", body, headers)
    assert retry.status == 200
    assert retry.body == {"ok": True, "duplicate": True}
    other = event_callback_body(
        {"type": "app_mention", "user": "U0BOB", "text": "hi", "channel": "C0OPS", "ts": "1.2"},
        event_id="Ev0RETRY02",
    )
    fresh = await world.post(
        "/slack/events", other, sign(world.signing_secret, other, content_type="application/json")
    )
    assert fresh.body != {"ok": True, "duplicate": True}
