"""Scenario: /dhanam rollback, scale and db restore through signed requests and clicks, against
moto (the Dhanam world), the Slack emulator and the session's redis-server."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from sandbox.world import SandboxWorld, buttons_of

REGION = "us-east-1"
RESOURCE = "service/dhanam-production/dhanam-api"


def aws(world: SandboxWorld, name: str) -> Any:
    return boto3.client(name, region_name=REGION, endpoint_url=world.aws_endpoint_url)  # type: ignore[call-overload]


def running_revision(world: SandboxWorld) -> str:
    svc = aws(world, "ecs").describe_services(cluster="dhanam-production", services=["dhanam-api"])[
        "services"
    ][0]
    return str(svc["taskDefinition"]).rpartition("/")[2]


def desired_count(world: SandboxWorld) -> int:
    svc = aws(world, "ecs").describe_services(cluster="dhanam-production", services=["dhanam-api"])[
        "services"
    ][0]
    return int(svc["desiredCount"])


def scalable(world: SandboxWorld) -> tuple[int, int]:
    target = aws(world, "application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs", ResourceIds=[RESOURCE]
    )["ScalableTargets"][0]
    return target["MinCapacity"], target["MaxCapacity"]


def db_ids(world: SandboxWorld) -> list[str]:
    found = aws(world, "rds").describe_db_instances()["DBInstances"]
    return sorted(d["DBInstanceIdentifier"] for d in found)


def newest_card(world: SandboxWorld, channel: str = "C0DEPLOYS") -> Any:
    cards = [
        m for m in world.slack.messages(channel) if buttons_of(m.blocks or []) and not m.is_reply
    ]
    return cards[-1].snapshot()


def card_now(world: SandboxWorld, card: Any, channel: str = "C0DEPLOYS") -> str:
    return str(next(m for m in world.slack.messages(channel) if m.ts == card.ts).blocks)


def button(card: Any, label: str) -> Any:
    return next(b for b in buttons_of(card.blocks) if b.label == label)


async def ask(world: SandboxWorld, text: str, user: str = "alice") -> str:
    await world.slash(text, user=user)
    await world.settle()
    return str(world.slack.ephemerals(world.user_id(user))[-1].text)


async def approve(world: SandboxWorld, card: Any, user: str) -> None:
    await world.click(card, button(card, "Approve"), user=user)
    await world.settle()


# -- rollback ------------------------------------------------------------------------------
async def test_rollback_after_a_deploy_goes_back_through_history(aws_bot: SandboxWorld) -> None:
    assert "Approval requested" in await ask(aws_bot, "deploy api production v1.3.0")
    await approve(aws_bot, newest_card(aws_bot), "bob")
    assert running_revision(aws_bot) == "dhanam-api:4"

    told = await ask(aws_bot, "rollback api production --reason v1.3.0 broke login")
    assert "Approval requested: Roll back api in production: dhanam-api:4 → dhanam-api:3" in told
    card = newest_card(aws_bot)
    text = str(card.blocks)
    assert "Roll back api in production: dhanam-api:4 → dhanam-api:3" in text
    assert "v1.3.0" in text
    assert "v1.2.0" in text
    assert running_revision(aws_bot) == "dhanam-api:4"

    await approve(aws_bot, card, "bob")
    assert running_revision(aws_bot) == "dhanam-api:3"
    final = card_now(aws_bot, card)
    assert "Rolling out" in final or "*Rollout:*" in final  # followed, like a deploy
    assert "dhanam-api:3" in final
    revisions = aws(aws_bot, "ecs").list_task_definitions(familyPrefix="dhanam-api")
    assert len(revisions["taskDefinitionArns"]) == 4  # the rollback registered nothing
    history = await aws_bot.flow().runtime.history.recent("api", "production", 5)
    assert [r.kind for r in history] == ["rollback", "deploy"]
    assert history[0].requested_by == "U0ALICE"
    assert history[0].approved_by == ["U0BOB"]


async def test_rollback_without_history_picks_the_previous_active_revision(
    aws_bot: SandboxWorld,
) -> None:
    await ask(aws_bot, "rollback api production")
    card = newest_card(aws_bot)
    assert "dhanam-api:3 → dhanam-api:2" in str(card.blocks)
    await approve(aws_bot, card, "carol")
    assert running_revision(aws_bot) == "dhanam-api:2"


async def test_rollback_to_an_unknown_revision_is_refused(aws_bot: SandboxWorld) -> None:
    refusal = await ask(aws_bot, "rollback api production --to 9")
    assert "revision 9 is not an active revision of dhanam-api — active: 1, 2, 3" in refusal
    assert running_revision(aws_bot) == "dhanam-api:3"
    assert aws_bot.slack.calls_to("chat.postMessage") == []


# -- scale ---------------------------------------------------------------------------------
async def test_scale_max_approved_by_bob(aws_bot: SandboxWorld) -> None:
    told = await ask(aws_bot, "scale api production --max 15 --reason black friday")
    assert "Scale api in production: max 10 → 15" in told
    card = newest_card(aws_bot)
    assert "black friday" in str(card.blocks)
    assert scalable(aws_bot) == (2, 10)
    await approve(aws_bot, card, "bob")
    assert scalable(aws_bot) == (2, 15)
    assert desired_count(aws_bot) == 2
    final = card_now(aws_bot, card)
    assert "Done" in final
    assert "api in production: max 10 → 15" in final


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (
            "scale api production --max 500",
            "--max 500 is above the limit of 50 tasks ([scale] max_tasks)",
        ),
        (
            "scale api production --desired 12",
            "--desired 12 is above the autoscaling max of 10 — raise --max too",
        ),
        (
            "scale api production --min 3",
            "--min 3 is above the desired count of 2 — raise --desired too",
        ),
        ("scale api production --min 2 --max 10", "already min 2, max 10, desired 2"),
    ],
)
async def test_scale_refusals_change_nothing(
    aws_bot: SandboxWorld, command: str, message: str
) -> None:
    refusal = await ask(aws_bot, command)
    assert message in refusal
    assert scalable(aws_bot) == (2, 10)
    assert desired_count(aws_bot) == 2
    assert aws_bot.slack.calls_to("chat.postMessage") == []


# -- db restore ----------------------------------------------------------------------------
async def test_db_restore_latest_needs_two_approvers(aws_bot: SandboxWorld) -> None:
    before = db_ids(aws_bot)
    told = await ask(aws_bot, "db restore production --to latest --reason bad migration")
    assert "Restore database dhanam-production (production)" in told
    assert "needs 2 approvals" in told
    card = newest_card(aws_bot, "C0OPS")
    text = str(card.blocks)
    assert "0 of 2" in text
    assert "left untouched" in text
    assert "dhanam-production-restore-" in text

    await approve(aws_bot, card, "bob")
    assert "1 of 2" in card_now(aws_bot, card, "C0OPS")
    assert db_ids(aws_bot) == before

    await approve(aws_bot, card, "bob")  # counts once
    assert db_ids(aws_bot) == before

    await approve(aws_bot, card, "carol")
    after = db_ids(aws_bot)
    created = [d for d in after if d not in before]
    assert len(created) == 1
    assert created[0].startswith("dhanam-production-restore-")
    final = card_now(aws_bot, card, "C0OPS")
    assert "Done" in final
    assert f"restored into {created[0]} — AWS reports it available" in final
    described = aws(aws_bot, "rds").describe_db_instances(DBInstanceIdentifier=created[0])
    instance = described["DBInstances"][0]
    assert instance["DBInstanceClass"] == "db.t3.medium"
    assert instance["MultiAZ"] is True


async def test_db_restore_outside_the_window_is_refused(aws_bot: SandboxWorld) -> None:
    before = db_ids(aws_bot)
    refusal = await ask(aws_bot, "db restore production --to 2025-01-01T00:00:00Z")
    assert "2025-01-01 00:00 UTC is outside the restorable window of dhanam-production" in refusal
    assert db_ids(aws_bot) == before
    assert aws_bot.slack.calls_to("chat.postMessage") == []


async def test_db_restore_in_staging_is_refused(aws_bot: SandboxWorld) -> None:
    before = db_ids(aws_bot)
    refusal = await ask(aws_bot, "db restore staging --to latest")
    assert "staging has no db_instance configured" in refusal
    assert db_ids(aws_bot) == before
    assert aws_bot.slack.calls_to("chat.postMessage") == []
