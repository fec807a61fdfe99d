"""Scenario: /dhanam deploy through signed requests, approved by a second person, against moto."""

from __future__ import annotations

import asyncio
from typing import Any

import boto3

from approvals.models import State
from sandbox.redis_server import RedisServer
from sandbox.world import SandboxWorld, buttons_of


def ecs(world: SandboxWorld) -> Any:
    return boto3.client("ecs", region_name="us-east-1", endpoint_url=world.aws_endpoint_url)


def service_task_definition(world: SandboxWorld, cluster: str = "dhanam-production") -> str:
    svc = ecs(world).describe_services(cluster=cluster, services=["dhanam-api"])["services"][0]
    return str(svc["taskDefinition"])


def newest_card(world: SandboxWorld, channel: str = "C0DEPLOYS") -> Any:
    cards = [
        m for m in world.slack.messages(channel) if buttons_of(m.blocks or []) and not m.is_reply
    ]
    return cards[-1].snapshot()


def button(card: Any, label: str) -> Any:
    return next(b for b in buttons_of(card.blocks) if b.label == label)


async def test_alice_requests_bob_approves_ecs_rolls(aws_bot: SandboxWorld) -> None:
    before = service_task_definition(aws_bot)
    reply = await aws_bot.slash("deploy api production v1.3.0 --reason fix login", user="alice")
    assert reply.status == 200
    await aws_bot.settle()
    told = aws_bot.slack.ephemerals("U0ALICE")[-1].text
    assert "Approval requested" in told
    assert "<#C0DEPLOYS>" in told
    card = newest_card(aws_bot)
    text = str(card.blocks)
    assert "Deploy api to production: v1.2.0 → v1.3.0" in text
    assert "fix login" in text
    assert "sha256:" in text
    assert service_task_definition(aws_bot) == before  # nothing changed before approval

    await aws_bot.click(card, button(card, "Approve"), user="alice")
    await aws_bot.settle()
    assert "two-person rule" in aws_bot.slack.ephemerals("U0ALICE")[-1].text

    await aws_bot.click(card, button(card, "Approve"), user="bob")
    await aws_bot.settle()
    after = service_task_definition(aws_bot)
    assert after != before
    described = ecs(aws_bot).describe_task_definition(taskDefinition=after)["taskDefinition"]
    assert described["revision"] == 4
    image = described["containerDefinitions"][0]["image"]
    assert "@sha256:" in image
    final = next(m for m in aws_bot.slack.messages("C0DEPLOYS") if m.ts == card.ts)
    assert buttons_of(final.blocks or []) == []
    shown = str(final.blocks)
    # A deploy is followed: the card says its rollout's state (never a bare "Done").
    assert "Rolling out" in shown or "*Rollout:*" in shown
    assert "Done" not in shown
    assert "dhanam-api now on dhanam-api:4" in shown
    history = await aws_bot.app[
        __import__("bot.app", fromlist=["DEPS"]).DEPS
    ].flow.runtime.history.recent("api", "production", 5)
    assert history[0].requested_by == "U0ALICE"
    assert history[0].approved_by == ["U0BOB"]


async def test_staging_needs_no_approval_but_is_audited(aws_bot: SandboxWorld) -> None:
    before = service_task_definition(aws_bot, "dhanam-staging")
    await aws_bot.slash("deploy api staging v1.3.0", user="dave", channel="C0OPS")
    await aws_bot.settle()
    assert service_task_definition(aws_bot, "dhanam-staging") != before
    assert "running now" in aws_bot.slack.ephemerals("U0DAVE")[-1].text
    audit = await aws_bot.flow().store.recent_audit(10)
    events = [e["event"] for e in audit]
    assert "auto_approved" in events
    assert "succeeded" in events


async def test_unknown_tag_is_refused_and_changes_nothing(aws_bot: SandboxWorld) -> None:
    before = service_task_definition(aws_bot)
    await aws_bot.slash("deploy api production v9.9.9", user="alice")
    await aws_bot.settle()
    text = aws_bot.slack.ephemerals("U0ALICE")[-1].text
    assert 'unknown tag "v9.9.9"' in text
    assert "v1.3.0" in text
    assert service_task_definition(aws_bot) == before
    assert aws_bot.slack.calls_to("chat.postMessage") == []


async def test_lock_refuses_deploys_until_unlocked_and_break_glass_needs_one_more(
    aws_bot: SandboxWorld,
) -> None:
    await aws_bot.slash('lock api production "db migration running"', user="carol")
    await aws_bot.settle()
    assert any("locked *api* in *production*" in m.text for m in aws_bot.slack.messages("C0OPS"))
    await aws_bot.slash("deploy api production v1.3.0", user="alice")
    await aws_bot.settle()
    refusal = aws_bot.slack.ephemerals("U0ALICE")[-1].text
    assert "blocked" in refusal
    assert "db migration running" in refusal
    assert "--break-glass" in refusal
    assert aws_bot.slack.calls_to("chat.postMessage") == [
        c
        for c in aws_bot.slack.calls_to("chat.postMessage")
        if c.params.get("channel") != "C0DEPLOYS"
    ]

    await aws_bot.slash("deploy api production v1.3.0 --break-glass", user="alice")
    await aws_bot.settle()
    card = newest_card(aws_bot)
    assert "BREAK-GLASS" in str(card.blocks)
    assert "0 of 2" in str(card.blocks)

    await aws_bot.slash("unlock api production", user="carol")
    await aws_bot.settle()
    assert any("unlocked *api*" in m.text for m in aws_bot.slack.messages("C0OPS"))


async def test_approvals_and_audit_commands(aws_bot: SandboxWorld) -> None:
    await aws_bot.slash("deploy api production v1.3.0", user="alice")
    await aws_bot.settle()
    await aws_bot.slash("approvals", user="bob")
    await aws_bot.settle()
    listing = aws_bot.slack.ephemerals("U0BOB")[-1].text
    assert "Deploy api to production" in listing
    assert "you can approve or deny" in listing
    await aws_bot.slash("approvals", user="dave")
    await aws_bot.settle()
    assert aws_bot.slack.ephemerals("U0DAVE")[-1].text == "Nothing is waiting for you."
    await aws_bot.slash("audit 5", user="dave")
    await aws_bot.settle()
    assert "*requested* by <@U0ALICE>" in aws_bot.slack.ephemerals("U0DAVE")[-1].text


async def test_redis_down_fails_closed_with_a_clear_reply(
    aws_bot: SandboxWorld, redis_server: RedisServer
) -> None:
    await asyncio.to_thread(redis_server.shutdown)
    try:
        reply = await aws_bot.slash("deploy api production v1.3.0", user="alice")
        assert reply.status == 200
        await aws_bot.settle()
        text = aws_bot.slack.ephemerals("U0ALICE")[-1].text
        assert text == "approval store unavailable. Nothing was changed."
    finally:
        await asyncio.to_thread(redis_server.restart)
    assert (await aws_bot.flow().store.active_ids()) == []


async def test_redis_down_on_click_fails_closed(
    aws_bot: SandboxWorld, redis_server: RedisServer
) -> None:
    await aws_bot.slash("deploy api production v1.3.0", user="alice")
    await aws_bot.settle()
    card = newest_card(aws_bot)
    before = service_task_definition(aws_bot)
    await asyncio.to_thread(redis_server.shutdown)
    try:
        await aws_bot.click(card, button(card, "Approve"), user="bob")
        await aws_bot.settle()
        told = aws_bot.slack.ephemerals("U0BOB")[-1].text
        # The script may have run before the connection dropped: no promise it did not.
        assert "may or may not have been recorded" in told
        assert "nothing was changed" not in told.lower()
    finally:
        await asyncio.to_thread(redis_server.restart)
    assert service_task_definition(aws_bot) == before
    request_id = button(card, "Approve").value
    stored = await aws_bot.flow().store.get(request_id)
    assert stored is not None
    assert stored.state is State.PENDING


async def test_aws_refusal_puts_code_and_message_on_the_card_and_in_the_audit(
    aws_bot: SandboxWorld,
) -> None:
    from botocore.exceptions import ClientError  # noqa: PLC0415

    before = service_task_definition(aws_bot)
    ecs_client = aws_bot.flow().runtime.aws.clients.client("ecs", "us-east-1")

    def deny(**_kwargs: object) -> None:
        raise ClientError(
            {
                "Error": {
                    "Code": "AccessDeniedException",
                    "Message": "User is not authorized to perform: ecs:UpdateService",
                }
            },
            "UpdateService",
        )

    ecs_client.meta.events.register("before-call.ecs.UpdateService", deny)
    try:
        await aws_bot.slash("deploy api production v1.3.0", user="alice")
        await aws_bot.settle()
        card = newest_card(aws_bot)
        await aws_bot.click(card, button(card, "Approve"), user="bob")
        await aws_bot.settle()
    finally:
        ecs_client.meta.events.unregister("before-call.ecs.UpdateService", deny)
    final = next(m for m in aws_bot.slack.messages("C0DEPLOYS") if m.ts == card.ts)
    text = str(final.blocks)
    assert "Failed" in text
    assert "AccessDeniedException" in text
    assert "not authorized to perform: ecs:UpdateService" in text
    assert service_task_definition(aws_bot) == before
    failed = [e for e in await aws_bot.flow().store.recent_audit(10) if e["event"] == "failed"]
    assert "AccessDeniedException" in failed[0]["note"]
