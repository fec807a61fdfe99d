"""Scenario: what the approvers of `dr activate` see and what the gate holds them to — the
replica's status and the RPO on the card (never fingerprinted: the lag moves), a replica that
becomes unusable after the approval refused at the gate, and a long TTL on the record warned."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sandbox.dr_world import DR_CLUSTER, DR_REGION, PRIMARY_TARGET, ZONE_ID
from sandbox.world import SandboxWorld
from tests.scenario.test_dr_activate import (
    approve,
    ask,
    aws,
    card_now,
    newest_card,
    record_values,
    replica_tags,
    service,
)
from tests.scenario.test_dr_status import put_lag


@contextmanager
def replica_status(world: SandboxWorld, status: str) -> Iterator[None]:
    """DescribeDBInstances (the bot's, in the DR region) shows the replica ``status``."""
    made = world.flow().runtime.aws.clients.client("rds", DR_REGION)
    event = "after-call.rds.DescribeDBInstances"

    def shown(parsed: dict[str, Any], **_kwargs: Any) -> None:
        for instance in parsed.get("DBInstances", []):
            instance["DBInstanceStatus"] = status

    made.meta.events.register(event, shown)
    try:
        yield
    finally:
        made.meta.events.unregister(event, shown)


async def test_the_card_shows_the_replica_and_the_rpo(aws_bot: SandboxWorld) -> None:
    put_lag(aws_bot, 12)
    await ask(aws_bot, "dr activate --reason us-east-1 down")
    card = newest_card(aws_bot)
    plan = card_now(aws_bot, card)
    assert "replica dhanam-production-dr: available" in plan
    assert "RPO: 12 s of data behind (replica lag), within the 1 h target" in plan
    put_lag(aws_bot, 30)  # the lag moves between the request and the gate: not refused
    await approve(aws_bot, card, "bob")
    await approve(aws_bot, card, "carol")
    assert "DR active in us-west-2 after " in card_now(aws_bot, card)


async def test_a_replica_gone_bad_after_the_approval_is_refused_at_the_gate(
    aws_bot: SandboxWorld,
) -> None:
    await ask(aws_bot, "dr activate --reason us-east-1 down")
    card = newest_card(aws_bot)
    await approve(aws_bot, card, "bob")
    with replica_status(aws_bot, "incompatible-parameters"):
        await approve(aws_bot, card, "carol")
    refusal = aws_bot.slack.ephemerals(aws_bot.user_id("carol"))[-1].text
    assert "the plan changed since it was approved" in refusal
    assert "incompatible-parameters" in refusal
    assert "dhanam:promoted-by" not in replica_tags(aws_bot)  # nothing was changed
    assert service(aws_bot, DR_CLUSTER, "dhanam-api")["desiredCount"] == 0
    assert record_values(aws_bot) == [PRIMARY_TARGET]


async def test_a_long_ttl_on_the_record_is_warned(aws_bot: SandboxWorld) -> None:
    aws(aws_bot, "route53").change_resource_record_sets(
        HostedZoneId=ZONE_ID,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": "api.dhanam.io",
                        "Type": "CNAME",
                        "TTL": 3600,
                        "ResourceRecords": [{"Value": PRIMARY_TARGET}],
                    },
                }
            ]
        },
    )
    await ask(aws_bot, "dr activate --reason us-east-1 down")
    plan = card_now(aws_bot, newest_card(aws_bot))
    assert "api.dhanam.io has a TTL of 1 h: resolvers and clients keep the primary" in plan
