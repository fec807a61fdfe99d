"""Scenario: incidents end to end — signed /dhanam requests, the Slack emulator, the fake
PagerDuty, signed PagerDuty webhooks into the running bot, real Redis."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.app import DEPS
from commands.incidents.models import CHECKLIST
from sandbox.world import SandboxWorld
from tests.scenario.incident_helpers import (
    card_text,
    incident_of,
    message,
    only_channel,
    tick_boxes,
)


async def test_declare_sev1_opens_channel_card_checklist_page_and_announcement(
    world: SandboxWorld,
) -> None:
    reply = await world.slash("incident declare sev1 API returning 5xx", user="alice")
    assert reply.status == 200
    await world.settle()
    channel = only_channel(world)
    assert channel.name == f"inc-{datetime.now(UTC):%Y%m%d}-api-returning-5xx"
    assert "U0ALICE" in channel.members
    assert "SEV1" in channel.topic
    assert "investigating" in channel.topic
    incident = await incident_of(world, channel.id)
    assert incident.commander == "U0ALICE"

    card = message(world, channel.id, incident.card_ts)
    assert card.pinned
    text = str(card.blocks)
    for expected in ("SEV1", "investigating", "<@U0ALICE>", "<!date^", "triggered", "none yet"):
        assert expected in text, expected
    assert "open in PagerDuty" in text  # the link, from the REST API

    checklist = message(world, channel.id, incident.checklist_ts)
    element = next(b for b in checklist.blocks or [] if b["type"] == "actions")["elements"][0]
    assert element["type"] == "checkboxes"
    assert [o["value"] for o in element["options"]] == [key for key, _ in CHECKLIST]
    assert "Activate the DR region (us-west-2)" in str(element)

    fake = world.pagerduty
    assert len(fake.incidents) == 1
    pd = fake.incident_by_dedup(incident.id)
    assert pd is not None
    assert pd.severity == "critical"
    trigger = fake.events[0].body
    assert trigger["links"][0]["href"].endswith(channel.id)
    assert incident.pd_url == pd.html_url

    announced = world.slack.messages("C0INCIDENTS")
    assert len(announced) == 1
    assert f"<#{channel.id}>" in announced[0].text
    assert "API returning 5xx" in announced[0].text
    told = world.slack.ephemerals("U0ALICE")[-1].text
    assert f"<#{channel.id}>" in told
    assert "(hand over with `/dhanam incident commander @user`)" in told


async def test_a_user_mentioned_in_the_title_is_kept_as_their_name(world: SandboxWorld) -> None:
    await world.slash("incident declare sev2 <@U0BOB|bob> pager storm <@U0CAROL>", user="alice")
    await world.settle()
    channel = only_channel(world)
    assert channel.name == f"inc-{datetime.now(UTC):%Y%m%d}-bob-pager-storm-carol"
    incident = await incident_of(world, channel.id)
    assert incident.title == "@bob pager storm @carol"
    announced = world.slack.messages("C0INCIDENTS")[0].text
    assert "SEV2 *@bob pager storm @carol* declared by <@U0ALICE>" in announced
    assert "&lt;@" not in announced  # no raw token shown, and no one pinged by the title
    assert channel.topic.startswith("SEV2 · investigating · IC @alice · @bob pager storm")


async def test_sev2_has_no_checklist_and_pages_as_error(world: SandboxWorld) -> None:
    await world.slash("incident declare sev2 Slow dashboards", user="bob")
    await world.settle()
    incident = await incident_of(world, only_channel(world).id)
    assert incident.checklist_ts == ""
    pd = world.pagerduty.incident_by_dedup(incident.id)
    assert pd is not None
    assert pd.severity == "error"


async def test_a_taken_name_gets_a_suffix(world: SandboxWorld) -> None:
    await world.slash("incident declare sev3 Login flaky", user="alice")
    await world.settle()
    await world.slash("incident declare sev3 Login flaky", user="bob")
    await world.settle()
    names = sorted(c.name for c in world.slack.world.channels.values() if "login" in c.name)
    day = f"{datetime.now(UTC):%Y%m%d}"
    assert names == [f"inc-{day}-login-flaky", f"inc-{day}-login-flaky-2"]
    assert len(world.pagerduty.incidents) == 2  # two incidents, two dedup keys


async def test_update_status_commander_resolve(world: SandboxWorld) -> None:
    await world.slash("incident declare sev2 Payments failing", user="alice")
    await world.settle()
    channel = only_channel(world).id
    incident = await incident_of(world, channel)

    await world.slash("incident update rolled back api to v1.2.0", user="alice", channel=channel)
    await world.settle()
    assert "rolled back api to v1.2.0" in card_text(world, incident)

    await world.slash("incident status identified", user="bob", channel=channel)
    await world.settle()
    assert "identified" in card_text(world, incident)
    assert "identified" in world.slack.world.channels[channel].topic

    await world.slash("incident commander <@U0CAROL|carol>", user="alice", channel=channel)
    await world.settle()
    assert "U0CAROL" in world.slack.world.channels[channel].members
    assert "*Commander*\\n<@U0CAROL>" in card_text(world, incident)

    await world.slash("incident update not here", user="alice", channel="C0OPS")
    await world.settle()
    refusal = world.slack.ephemerals("U0ALICE")[-1].text
    assert "incident channel" in refusal
    assert "<#C0OPS>" in refusal

    await world.slash("incident resolve bad config reverted", user="carol", channel=channel)
    await world.settle()
    final = card_text(world, incident)
    assert "resolved after" in final
    assert "bad config reverted" in final
    pd = world.pagerduty.incident_by_dedup(incident.id)
    assert pd is not None
    assert pd.status == "resolved"
    resolves = [e for e in world.pagerduty.events if e.body["event_action"] == "resolve"]
    assert [e.body["dedup_key"] for e in resolves] == [incident.id]
    summary = world.slack.messages(channel)[-1].text
    assert summary.startswith(f"*Timeline of {incident.id}*")
    for step in ("declared SEV2", "update: rolled back", "status → identified", "commander"):
        assert step in summary, step
    announcement = world.slack.messages("C0INCIDENTS")[0].text
    assert "resolved after" in announcement
    # One status emoji: the check mark, then the severity named.
    assert announcement.startswith(":white_check_mark: SEV2 *")
    assert summary.startswith(f"*Timeline of {incident.id}* — ")
    assert "(SEV2, " in summary.split("\n")[0]

    await world.slash("incident update again", user="alice", channel=channel)
    await world.settle()
    assert "already resolved" in world.slack.ephemerals("U0ALICE")[-1].text


async def test_checklist_ticks_are_recorded_with_who_and_when(world: SandboxWorld) -> None:
    await world.slash("incident declare sev1 Total outage", user="alice")
    await world.settle()
    channel = only_channel(world).id
    incident = await incident_of(world, channel)
    checklist = message(world, channel, incident.checklist_ts)

    reply = await tick_boxes(world, checklist, ["dns", "ecs"], user="bob")
    assert reply.status == 200
    await world.settle()
    after = message(world, channel, incident.checklist_ts)
    assert "2 of 7 done" in str(after.blocks)
    assert "Verify DNS resolution — <@U0BOB>" in str(after.blocks)
    actions = next(b for b in after.blocks or [] if b["type"] == "actions")
    ticked = [o["value"] for o in actions["elements"][0]["initial_options"]]
    assert ticked == ["dns", "ecs"]

    await tick_boxes(world, after, ["ecs", "dr_region"], user="carol")  # dns unticked
    await world.settle()
    timeline = await world.app[DEPS].incidents.store.timeline(incident.id)
    lines = [(e.by, e.text) for e in timeline]
    assert ("U0BOB", "checklist :ballot_box_with_check: Verify DNS resolution") in lines
    assert ("U0BOB", "checklist :ballot_box_with_check: Review ECS service status") in lines
    assert (
        "U0CAROL",
        "checklist :ballot_box_with_check: Activate the DR region (us-west-2)",
    ) in lines
    assert ("U0CAROL", "checklist :white_large_square: Verify DNS resolution (unticked)") in lines
    assert all(e.at.tzinfo is not None for e in timeline)
