"""Scenario: signed slash commands through POST /slack/events, answered as Slack shows them."""

from __future__ import annotations

import time

from sandbox.signing import sign, slash_command_body
from sandbox.world import SandboxWorld


async def test_help_is_answered_in_the_ack(world: SandboxWorld) -> None:
    reply = await world.slash("help")
    assert reply.status == 200
    assert reply.body["response_type"] == "ephemeral"
    text = str(reply.blocks)
    for command in ("deploy", "rollback", "scale", "db restore", "status", "incident declare"):
        assert command in text


async def test_help_for_one_command_shows_examples(world: SandboxWorld) -> None:
    reply = await world.slash("help deploy")
    assert reply.status == 200
    assert "/dhanam deploy api production v1.4.2" in str(reply.blocks)
    assert "break-glass" in str(reply.blocks)


async def test_unknown_service_names_the_valid_choices(world: SandboxWorld) -> None:
    reply = await world.slash("deploy apii production v1.4.2")
    assert reply.status == 200
    assert reply.body["response_type"] == "ephemeral"
    assert 'unknown service "apii"' in reply.text
    assert "known: api, web" in reply.text
    assert reply.text.endswith(". Nothing was changed.")
    # The refusal changed nothing in Slack: no message was posted anywhere.
    assert world.slack.calls_to("chat.postMessage") == []


async def test_unknown_subcommand_suggests_and_lists(world: SandboxWorld) -> None:
    reply = await world.slash("deplo api production v1")
    assert "did you mean deploy?" in reply.text


async def test_unsigned_request_is_401(world: SandboxWorld) -> None:
    body = slash_command_body(
        text="help",
        user_id="U0ALICE",
        user_name="alice",
        channel_id="C0OPS",
        channel_name="ops",
        response_url=world.slack.new_response_url("C0OPS", "U0ALICE"),
    )
    reply = await world.post(
        "/slack/events", body, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert reply.status == 401
    assert reply.body["error"] == "unauthorized"


async def test_stale_signature_is_401(world: SandboxWorld) -> None:
    body = slash_command_body(
        text="help",
        user_id="U0ALICE",
        user_name="alice",
        channel_id="C0OPS",
        channel_name="ops",
        response_url=world.slack.new_response_url("C0OPS", "U0ALICE"),
    )
    headers = sign(world.signing_secret, body, timestamp=int(time.time()) - 301)
    reply = await world.post("/slack/events", body, headers)
    assert reply.status == 401


async def test_tampered_body_is_401(world: SandboxWorld) -> None:
    body = slash_command_body(
        text="help",
        user_id="U0ALICE",
        user_name="alice",
        channel_id="C0OPS",
        channel_name="ops",
        response_url=world.slack.new_response_url("C0OPS", "U0ALICE"),
    )
    headers = sign(world.signing_secret, body)
    reply = await world.post("/slack/events", body.replace("alice", "bob"), headers)
    assert reply.status == 401


async def test_wrong_secret_is_401(world: SandboxWorld) -> None:
    body = slash_command_body(
        text="help",
        user_id="U0ALICE",
        user_name="alice",
        channel_id="C0OPS",
        channel_name="ops",
        response_url=world.slack.new_response_url("C0OPS", "U0ALICE"),
    )
    reply = await world.post("/slack/events", body, sign("not-the-secret", body))
    assert reply.status == 401


async def test_help_run_lists_each_services_tasks(world: SandboxWorld) -> None:
    reply = await world.slash("help run")
    text = str(reply.blocks)
    assert "/dhanam run SERVICE ENV TASK" in text
    assert "*Tasks*\\n• api: migrate, migrate-status" in text


async def test_an_unknown_task_lists_the_services_tasks(world: SandboxWorld) -> None:
    reply = await world.slash("run api production migrat")
    assert reply.body["response_type"] == "ephemeral"
    assert 'unknown task of api "migrat" — known: migrate, migrate-status' in reply.text
    assert reply.text.endswith(". Nothing was changed.")
    assert world.slack.calls_to("chat.postMessage") == []
