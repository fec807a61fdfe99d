"""Scenario: `/dhanam dr activate` while the primary region's ECS cannot be reached — the outage
DR is for. Production's images and counts come from what the bot last read (`dr status`, an
earlier plan), said on the card; with no such read the request is refused, saying why."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import EndpointConnectionError

from sandbox.dr_world import DR_CLUSTER, DR_TARGET
from sandbox.world import SandboxWorld
from tests.scenario.test_dr_activate import (
    PRIMARY,
    approve,
    ask,
    card_now,
    image,
    newest_card,
    record_values,
    service,
)


@contextmanager
def unreachable(world: SandboxWorld, name: str, region: str) -> Iterator[None]:
    """Every call of the bot's ``name`` client in ``region`` fails to connect."""
    made = world.flow().runtime.aws.clients.client(name, region)
    event = f"before-call.{name}"

    def boom(**_kwargs: Any) -> None:
        raise EndpointConnectionError(endpoint_url=f"https://{name}.{region}.amazonaws.com/")

    made.meta.events.register(event, boom)
    try:
        yield
    finally:
        made.meta.events.unregister(event, boom)


async def test_with_the_primary_down_and_no_earlier_read_it_refuses_saying_why(
    aws_bot: SandboxWorld,
) -> None:
    with unreachable(aws_bot, "ecs", PRIMARY):
        told = await ask(aws_bot, "dr activate --reason us-east-1 down")
    assert "production's api could not be read in us-east-1 (AWS unreachable for" in told
    assert "the bot has no earlier read of what it runs" in told
    assert "Approval requested" not in told


async def test_with_the_primary_down_it_plans_from_what_dr_status_read(
    aws_bot: SandboxWorld,
) -> None:
    production_api = service(aws_bot, "dhanam-production", "dhanam-api", PRIMARY)
    await ask(aws_bot, "dr status", user="bob")  # reads production: kept as the snapshot
    with unreachable(aws_bot, "ecs", PRIMARY):
        told = await ask(aws_bot, "dr activate --reason us-east-1 down")
        assert "Approval requested: Activate DR in us-west-2" in told
        card = newest_card(aws_bot)
        plan = card_now(aws_bot, card)
        assert "s api could not be read (AWS unreachable for DescribeServices" in plan
        assert "): using what it ran at 20" in plan  # 2026-…-… HH:MM UTC, N s ago
        assert " s ago" in plan
        await approve(aws_bot, card, "bob")
        await approve(aws_bot, card, "carol")  # the gate re-plans from the snapshot too
        final = card_now(aws_bot, card)
    assert "DR active in us-west-2 after " in final, final
    dr_api = service(aws_bot, DR_CLUSTER, "dhanam-api")
    assert dr_api["desiredCount"] == production_api["desiredCount"] == 2
    assert image(aws_bot, dr_api) == image(aws_bot, production_api, PRIMARY)
    assert record_values(aws_bot) == [DR_TARGET]


async def test_approved_while_the_primary_answered_it_runs_when_the_primary_is_gone(
    aws_bot: SandboxWorld,
) -> None:
    """The request's plan read production (and kept it); the primary goes away before the last
    approval: the gate's plan comes from the snapshot with the same fingerprint."""
    await ask(aws_bot, "dr activate --reason us-east-1 degrading")
    card = newest_card(aws_bot)
    assert "could not be read" not in card_now(aws_bot, card)
    await approve(aws_bot, card, "bob")
    with unreachable(aws_bot, "ecs", PRIMARY):
        await approve(aws_bot, card, "carol")
    final = card_now(aws_bot, card)
    assert "DR active in us-west-2 after " in final, final
    assert record_values(aws_bot) == [DR_TARGET]


async def test_the_sev1_checklist_keeps_what_production_runs_too(aws_bot: SandboxWorld) -> None:
    """The sev1 checklist's DR check reads production's services: kept as the snapshot, so an
    activation asked from the incident plans even if the primary has gone since."""
    await aws_bot.slash("incident declare sev1 us-east-1 is down", user="bob")
    await aws_bot.settle()
    with unreachable(aws_bot, "ecs", PRIMARY):
        told = await ask(aws_bot, "dr activate --reason us-east-1 down")
        plan = card_now(aws_bot, newest_card(aws_bot))
    assert "Approval requested: Activate DR in us-west-2" in told, told
    assert "s api could not be read (AWS unreachable for DescribeServices" in plan
