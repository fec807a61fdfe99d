"""Scenario: `/dhanam dr activate` through signed requests and clicks, against moto's DR region
(sandbox/dr_world.py: the replica, the DR services at 0, the failover record), the Slack emulator
and the session's redis-server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from bot.wiring import Overrides
from commands.operations.dr_activate import DrActivateAction
from core.errors import ChatOpsError
from core.guard import guarded
from integrations.aws.dr_actions import PROMOTED_TAG
from sandbox.aws_world import DhanamWorld
from sandbox.dr_world import (
    DR_CLUSTER,
    DR_DB_INSTANCE,
    DR_REGION,
    DR_TARGET,
    PRIMARY_TARGET,
    ZONE_ID,
)
from sandbox.world import EXAMPLE_CONFIG, SandboxWorld, buttons_of
from tests.fixtures.bot import FAST_ROLLOUTS, aws_sandbox
from tests.scenario.incident_helpers import card_text, incident_of, only_channel

CHANNEL = "C0OPS"
PRIMARY = "us-east-1"


def aws(world: SandboxWorld, name: str, region: str = DR_REGION) -> Any:
    return boto3.client(name, region_name=region, endpoint_url=world.aws_endpoint_url)  # type: ignore[call-overload]


def service(world: SandboxWorld, cluster: str, name: str, region: str = DR_REGION) -> Any:
    return aws(world, "ecs", region).describe_services(cluster=cluster, services=[name])[
        "services"
    ][0]


def image(world: SandboxWorld, svc: Any, region: str = DR_REGION) -> str:
    described = aws(world, "ecs", region).describe_task_definition(
        taskDefinition=svc["taskDefinition"]
    )
    return str(described["taskDefinition"]["containerDefinitions"][0]["image"])


def record_values(world: SandboxWorld) -> list[str]:
    sets = aws(world, "route53").list_resource_record_sets(
        HostedZoneId=ZONE_ID, StartRecordName="api.dhanam.io", MaxItems="1"
    )["ResourceRecordSets"]
    return [r["Value"] for r in sets[0]["ResourceRecords"]]


def replica_tags(world: SandboxWorld) -> dict[str, str]:
    rds = aws(world, "rds")
    arn = rds.describe_db_instances(DBInstanceIdentifier=DR_DB_INSTANCE)["DBInstances"][0][
        "DBInstanceArn"
    ]
    return {t["Key"]: t["Value"] for t in rds.list_tags_for_resource(ResourceName=arn)["TagList"]}


def newest_card(world: SandboxWorld) -> Any:
    cards = [
        m for m in world.slack.messages(CHANNEL) if buttons_of(m.blocks or []) and not m.is_reply
    ]
    return cards[-1].snapshot()


def card_now(world: SandboxWorld, card: Any) -> str:
    return str(next(m for m in world.slack.messages(CHANNEL) if m.ts == card.ts).blocks)


def board(world: SandboxWorld, card: Any) -> list[str]:
    """Every text the progress message in the card's thread had, in order (post, then edits)."""
    replies = [m for m in world.slack.thread(CHANNEL, card.ts) if m.ts != card.ts]
    progress = [m for m in replies if "DR activation in" in m.text or "DR active in" in m.text]
    assert len(progress) == 1, [m.text for m in replies]  # one message, edited in place
    edits = [
        str(c.params["text"])
        for c in world.slack.calls_to("chat.update")
        if c.params.get("ts") == progress[0].ts
    ]
    return [*edits, progress[0].text]


async def ask(world: SandboxWorld, text: str, user: str = "alice") -> str:
    await world.slash(text, user=user)
    await world.settle()
    return str(world.slack.ephemerals(world.user_id(user))[-1].text)


async def approve(world: SandboxWorld, card: Any, user: str) -> None:
    button = next(b for b in buttons_of(card.blocks) if b.label == "Approve")
    await world.click(card, button, user=user)
    await world.settle()


@contextmanager
def refused(
    world: SandboxWorld, region: str, client: str, operation: str, when: str = ""
) -> Iterator[None]:
    """AWS answers ``operation`` (whose parameters mention ``when``) with AccessDenied."""
    made = world.flow().runtime.aws.clients.client(client, region)
    event = f"provide-client-params.{client}.{operation}"

    def deny(params: dict[str, Any], **_kwargs: Any) -> None:
        if when in str(params):
            error = {"Code": "AccessDeniedException", "Message": f"not authorized to {operation}"}
            raise ClientError({"Error": error}, operation)

    made.meta.events.register(event, deny)
    try:
        yield
    finally:
        made.meta.events.unregister(event, deny)


async def test_two_approvals_activate_dr_step_by_step(aws_bot: SandboxWorld) -> None:
    await aws_bot.slash("incident declare sev2 us-east-1 is down", user="bob")
    await aws_bot.settle()
    incident_channel = only_channel(aws_bot).id
    production_api = service(aws_bot, "dhanam-production", "dhanam-api", PRIMARY)

    told = await ask(aws_bot, "dr activate --reason us-east-1 is down")
    assert "Approval requested: Activate DR in us-west-2: promote the database" in told
    assert "needs 2 approvals" in told
    card = newest_card(aws_bot)
    plan = card_now(aws_bot, card)
    replica = "dhanam-production-dr: read replica of dhanam-production (us-east-1), available"
    promote = "promoted to a standalone database (PromoteReadReplica), once available"
    assert f"*1. database*: `{replica}` → `{promote}`" in plan
    scale = "production's image already; scaled to 2 (update-service)"
    assert f"*2. api in dhanam-dr*: `dhanam-api:1 (v1.2.0), 0/0 running` → `{scale}`" in plan
    upsert = f"UPSERT → {DR_TARGET}, followed to INSYNC"
    assert f"*3. api.dhanam.io*: `CNAME → {PRIMARY_TARGET}` → `{upsert}`" in plan
    assert "*4. outcome*: `—` → `elapsed time against the 4 h RTO" in plan

    # The requester cannot approve; one approver is not enough: nothing changes.
    await approve(aws_bot, card, "alice")
    assert "two-person rule" in aws_bot.slack.ephemerals(aws_bot.user_id("alice"))[-1].text
    await approve(aws_bot, card, "bob")
    assert "1 of 2" in card_now(aws_bot, card)
    assert PROMOTED_TAG not in replica_tags(aws_bot)
    assert service(aws_bot, DR_CLUSTER, "dhanam-api")["desiredCount"] == 0
    assert record_values(aws_bot) == [PRIMARY_TARGET]

    await approve(aws_bot, card, "carol")
    request_id = card.blocks[-1]["elements"][0]["text"].split("`")[1]
    assert replica_tags(aws_bot)[PROMOTED_TAG] == request_id
    for name in ("dhanam-api", "dhanam-web"):
        dr = service(aws_bot, DR_CLUSTER, name)
        prod = service(aws_bot, "dhanam-production", name, PRIMARY)
        assert dr["desiredCount"] == prod["desiredCount"] == 2
        assert image(aws_bot, dr) == image(aws_bot, prod, PRIMARY)
    assert image(aws_bot, service(aws_bot, DR_CLUSTER, "dhanam-api")) == image(
        aws_bot, production_api, PRIMARY
    )
    assert record_values(aws_bot) == [DR_TARGET]

    final = card_now(aws_bot, card)
    assert ":white_check_mark: Done\\nDR active in us-west-2 after " in final
    assert "of the 4 h RTO: promote dhanam-production-dr: promoted, available" in final
    assert "desired 0 → 2 (update-service sent); 2/2 running; web: " in final
    texts = board(aws_bot, card)
    assert texts[0].startswith(":rotating_light: DR activation in us-west-2 · ")
    assert ":arrows_counterclockwise: 1. promote dhanam-production-dr" in texts[1]
    assert any(":arrows_counterclockwise: 2. web in dhanam-dr" in t for t in texts)
    assert any("UPSERT sent (change " in t for t in texts)
    last = texts[-1].splitlines()
    assert last[0].startswith(":white_check_mark: DR active in us-west-2 after ")
    assert last[1] == ":white_check_mark: 1. promote dhanam-production-dr — promoted, available"
    assert last[2].startswith(":white_check_mark: 2. api in dhanam-dr → v1.2.0 at 2 tasks — ")
    assert last[2].endswith("desired 0 → 2 (update-service sent); 2/2 running")  # observed
    assert last[4].startswith(f":white_check_mark: 3. api.dhanam.io → {DR_TARGET} — UPSERT done")
    assert last[4].endswith("INSYNC")

    # The open incident is told, on its card and in its channel, against the RTO.
    said = [m.text for m in aws_bot.slack.messages(incident_channel)]
    activated = [t for t in said if t.startswith(":white_check_mark: *DR activated in us-west-2*")]
    assert len(activated) == 1
    assert "of the 4 h RTO: 1. promote dhanam-production-dr; 2. api in dhanam-dr" in activated[0]
    assert f"; 3. api.dhanam.io → {DR_TARGET} (this incident began " in activated[0]
    assert any("this incident began" in t for t in said)
    incident = await incident_of(aws_bot, incident_channel)
    assert "DR activated in us-west-2" in card_text(aws_bot, incident)


async def test_a_failing_step_stops_the_rest(aws_bot: SandboxWorld) -> None:
    await aws_bot.slash("incident declare sev2 us-east-1 is down", user="bob")
    await aws_bot.settle()
    incident_channel = only_channel(aws_bot).id
    await ask(aws_bot, "dr activate")
    card = newest_card(aws_bot)
    await approve(aws_bot, card, "bob")
    with refused(aws_bot, DR_REGION, "ecs", "UpdateService", when="dhanam-web"):
        await approve(aws_bot, card, "carol")
    final = card_now(aws_bot, card)
    assert "DR activation stopped at step 2. web in dhanam-dr → v1.2.0 at 2 tasks after " in final
    assert (
        "AWS refused UpdateService: AccessDeniedException — not authorized to UpdateService"
        in final
    )
    # api's update was sent, but its tasks were not waited for: not "done"
    assert "Steps done: 1. promote dhanam-production-dr. Not run: 3. api.dhanam.io" in final
    assert "Started, not waited for: 2. api in dhanam-dr → v1.2.0 at 2 tasks." in final
    assert (
        "Already done before it failed: PromoteReadReplica, AddTagsToResource, UpdateService"
        in final
    )
    assert "Nothing was changed" not in final
    # Nothing after the failed step ran: web not scaled, the record untouched.
    assert service(aws_bot, DR_CLUSTER, "dhanam-api")["desiredCount"] == 2
    assert service(aws_bot, DR_CLUSTER, "dhanam-web")["desiredCount"] == 0
    assert record_values(aws_bot) == [PRIMARY_TARGET]
    last = board(aws_bot, card)[-1].splitlines()
    assert last[0].startswith(":x: DR activation in us-west-2 stopped after ")
    assert last[3].startswith(
        ":x: 2. web in dhanam-dr → v1.2.0 at 2 tasks — AWS refused UpdateService"
    )
    assert last[4] == f":heavy_minus_sign: 3. api.dhanam.io → {DR_TARGET} — not run"
    said = [m.text for m in aws_bot.slack.messages(incident_channel)]
    stopped = [
        t for t in said if t.startswith(":x: *DR activation in us-west-2 stopped* at 2. web")
    ]
    assert len(stopped) == 1
    assert "AWS refused UpdateService" in stopped[0]
    assert "— done: 1. promote dhanam-production-dr (" in stopped[0]
    assert stopped[0].endswith(" ago)")


async def test_a_replay_resumes_at_the_step_left(aws_bot: SandboxWorld) -> None:
    """An attempt that stopped at the record (AccessDenied) is executed again, as a replay of
    the same request: only the record is changed; the database and services are found done."""
    runtime = aws_bot.flow().runtime
    action = DrActivateAction(env="production", region=DR_REGION, request_id="replay0001")
    plan = await action.plan(runtime)
    assert not await action.applied(plan, runtime)
    sent: list[str] = []

    async def checkpoint(operation: str) -> None:
        sent.append(operation)

    route53 = "ChangeResourceRecordSets"
    with refused(aws_bot, "us-east-1", "route53", route53), guarded(checkpoint):
        with pytest.raises(ChatOpsError, match=f"AWS refused {route53}"):
            await action.execute(plan, runtime)
    assert sent == [
        "PromoteReadReplica",
        "AddTagsToResource",
        "UpdateService",
        "UpdateService",
        route53,
    ]
    assert record_values(aws_bot) == [PRIMARY_TARGET]

    again = await action.plan(runtime)
    assert again.fingerprint == plan.fingerprint  # what activation moved is not an input
    assert "already promoted" in str(again.changes[0])
    assert "already on production's v1.2.0 at 2 tasks" in str(again.changes[1])
    sent.clear()
    with guarded(checkpoint):
        result = await action.execute(plan, runtime)
    assert sent == [route53]  # no second PromoteReadReplica, RegisterTaskDefinition, UpdateService
    assert result.ok
    assert "already promoted, available" in result.summary
    assert "already on dhanam-api:1 at 2" in result.summary
    assert record_values(aws_bot) == [DR_TARGET]
    assert await action.applied(plan, runtime)


def freeze_config(tmp: Path) -> Path:
    """The example config with production frozen now, and dave among its approvers (the
    example's only other approvers, bob and carol, are not enough for three approvals)."""
    now = datetime.now(UTC)
    text = EXAMPLE_CONFIG.read_text()
    text = text.replace(
        "2026-12-24T00:00:00Z", (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    text = text.replace(
        "2026-12-27T00:00:00Z", (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    text = text.replace(
        'approvers = ["U0BOB", "U0CAROL", "S0SRE"]',
        'approvers = ["U0BOB", "U0CAROL", "S0SRE", "U0DAVE"]',
        1,
    )
    path = tmp / "dhanam.toml"
    path.write_text(text)
    return path


async def test_break_glass_during_a_freeze_needs_three(
    redis_url: str, aws_world: DhanamWorld, tmp_path: Path
) -> None:
    overrides = Overrides(sweeper=False, rollouts=FAST_ROLLOUTS)
    async with aws_sandbox(
        redis_url, aws_world, overrides, config_path=freeze_config(tmp_path)
    ) as world:
        refusal = await ask(world, "dr activate")
        assert "Activate DR in us-west-2 is blocked — freeze until" in refusal
        assert "add --break-glass" in refusal
        told = await ask(world, "dr activate --break-glass --reason region down")
        assert "needs 3 approvals" in told
        card = newest_card(world)
        assert "Break-glass past: freeze until" in card_now(world, card)
        await approve(world, card, "bob")
        await approve(world, card, "carol")
        assert "2 of 3" in card_now(world, card)
        assert record_values(world) == [PRIMARY_TARGET]
        await approve(world, card, "dave")
        assert "DR active in us-west-2 after " in card_now(world, card)
        assert record_values(world) == [DR_TARGET]


async def test_a_replica_dying_mid_activation_hands_it_over_and_it_resumes_at_the_right_step(
    redis_url: str, aws_world: DhanamWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replica running the activation stops answering half-way (the database promoted,
    api scaled, web's update-service never sent). Its lease lapses; the sweeper hands the
    request to another execution, which re-plans (same fingerprint), passes the gate and does
    only what is left: no second promotion, no second update of api."""
    import asyncio  # noqa: PLC0415

    from approvals.models import State  # noqa: PLC0415
    from integrations.aws.gateway import AwsGateway  # noqa: PLC0415

    overrides = Overrides(sweeper=False, rollouts=FAST_ROLLOUTS, lease=timedelta(seconds=2))
    async with aws_sandbox(redis_url, aws_world, overrides) as world:
        flow = world.flow()
        calls: list[str] = []
        stuck = asyncio.Event()
        original = AwsGateway.update_service

        async def update_service(self: AwsGateway, *args: Any, **kwargs: Any) -> Any:
            service_name = args[2]
            calls.append(f"update {service_name}")
            if service_name == "dhanam-web" and not stuck.is_set():
                stuck.set()
                await asyncio.Event().wait()  # the replica hangs here, then dies
            return await original(self, *args, **kwargs)

        monkeypatch.setattr(AwsGateway, "update_service", update_service)
        await ask(world, "dr activate --reason us-east-1 is down")
        card = newest_card(world)
        await world.click(
            card, next(b for b in buttons_of(card.blocks) if b.label == "Approve"), user="bob"
        )
        await world.settle()
        await world.click(
            card, next(b for b in buttons_of(card.blocks) if b.label == "Approve"), user="carol"
        )
        await asyncio.wait_for(stuck.wait(), 20)
        # The replica dies: its execution stops where it is (nothing recorded, no release of
        # the claim, which lapses with the 2 s lease).
        for task in list(flow._tasks):
            task.cancel()
        await asyncio.sleep(0.1)
        request_id = next(
            e["request_id"] for e in await flow.store.recent_audit(20) if e["kind"] == "dr_activate"
        )
        assert (await flow.store.get(request_id)).state is State.EXECUTING  # type: ignore[union-attr]
        assert replica_tags(world).get(PROMOTED_TAG) == request_id  # step 1 was done
        await asyncio.sleep(2.5)  # the lease lapses
        assert await flow.sweep_once() == 1
        await flow.drain()
        await world.settle()
        final = await flow.store.get(request_id)
        assert final is not None
        assert final.state is State.SUCCEEDED, final.outcome
        assert final.resumed_at is not None
        assert calls.count("update dhanam-api") == 1  # not sent again by the resumed run
        assert calls.count("update dhanam-web") == 2  # the hung call, then the resumed one
        assert record_values(world) == [DR_TARGET]
        events = [
            e["event"] for e in await flow.store.recent_audit(30) if e["request_id"] == request_id
        ]
        assert "resumed" in events
        thread = [m.text for m in world.slack.thread(CHANNEL, card.ts)]
        assert any("another one resumes it now" in t for t in thread)
