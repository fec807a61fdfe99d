"""The renderers at Slack's Block Kit limits, checked by the validator the Slack emulator uses
(sandbox/block_kit.py: slack_sdk's models plus the per-surface limits). Pure: no I/O."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from approvals.models import Approval, ApprovalRequest, Change, Plan, State
from approvals.policy import Hold
from commands.alarms.render import AlarmView, digest_message, root_message
from commands.incidents import checklist_render
from commands.incidents import render as incident_render
from commands.incidents.models import Incident
from commands.incidents.store import TimelineEntry
from commands.operations.card import card_blocks
from commands.render import error_blocks, help_blocks, pack_lines
from commands.requests import IncidentState, Severity
from commands.status.models import EcsView, Overview, ServiceStatus, Source
from commands.status.render import home_view, overview_blocks
from core.config import EnvironmentConfig
from integrations.aws.models import Deployment, ServiceState
from integrations.cloudwatch_alarms import AlarmKind, AlarmNotification, AlarmState
from sandbox.block_kit import (
    MESSAGE_MAX_BLOCKS,
    MESSAGE_TEXT_MAX,
    InvalidBlocksError,
    Surface,
    block_errors,
    check_blocks,
    view_errors,
)
from sandbox.slack_emulator_methods import SlackWorld

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def section_texts(blocks: list[dict[str, Any]]) -> str:
    return "\n".join(b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b)


# ---- the validator itself ---------------------------------------------------------------------


def test_the_validator_refuses_what_slack_refuses() -> None:
    def section(text: str, **extra: object) -> dict[str, Any]:
        return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}

    assert block_errors([section("ok")]) == []
    assert block_errors([section("x" * 3000)]) == []
    assert any("/blocks/0/text/text" in e for e in block_errors([section("x" * 3001)]))
    assert any("/blocks/0/text/text" in e for e in block_errors([section("")]))
    header = {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}
    assert block_errors([header])
    assert block_errors([{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}])
    button = {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "b"}}
    many = [{**button, "action_id": f"a{i}"} for i in range(26)]
    assert any("25" in e for e in block_errors([{"type": "actions", "elements": many}]))
    long_label = {**button, "text": {"type": "plain_text", "text": "b" * 76}}
    assert block_errors([{"type": "actions", "elements": [long_label]}])
    assert block_errors([{"type": "actions", "elements": [button, button]}])  # same action_id
    assert block_errors([section("a", block_id="x"), section("b", block_id="x")])
    assert block_errors([section("a", block_id="x" * 256)])
    fields = {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}
    assert block_errors([fields])
    assert block_errors([{"type": "no_such_block"}])
    assert block_errors("not a list")
    assert block_errors([section("a")] * 51)
    assert not block_errors([section("a")] * 50)
    assert block_errors([section("a")] * 100, Surface.HOME) == []
    assert block_errors([section("a")] * 101, Surface.HOME)
    assert view_errors({"type": "home", "blocks": [section("a")]}) == []
    title = {"type": "plain_text", "text": "t" * 25}
    assert view_errors({"type": "modal", "title": title, "blocks": [section("a")]})
    with pytest.raises(InvalidBlocksError) as refused:
        check_blocks([section("x" * 3001)])
    assert refused.value.errors
    assert SlackWorld.refuse_message("t" * (MESSAGE_TEXT_MAX + 1), None) == {
        "ok": False,
        "error": "msg_too_long",
    }


def test_pack_lines_keeps_whole_lines_in_order_within_the_limits() -> None:
    lines = [f"{i:03d} " + "x" * (i % 97) for i in range(400)]
    texts, hidden = pack_lines(lines, max_chunks=7, limit=500, max_lines=9)
    assert len(texts) <= 7
    assert all(len(t) <= 500 and t.count("\n") < 9 for t in texts)
    shown = "\n".join(texts).split("\n")
    assert shown == lines[: len(shown)]
    assert len(shown) + hidden == len(lines)


# ---- a storm digest of 60 alarms --------------------------------------------------------------


def alarm(i: int, state: AlarmState = AlarmState.ALARM) -> AlarmView:
    name = f"dhanam-{i:02d}-" + "very-long-alarm-name-" * 12  # CloudWatch allows 255
    notification = AlarmNotification(
        name=name[:255],
        description="d" * 1024,
        new_state=state,
        reason="Threshold Crossed: " + "r" * 2000,
        changed_at=NOW,
        region="us-east-1",
        kind=AlarmKind.METRIC,
    )
    assert notification.console_url  # a link on every line, as long as the name
    return AlarmView(notification, service="service-" + "s" * 40, fired_at=NOW)


@pytest.mark.parametrize("count", [60, 600])
def test_a_storm_digest_fits_one_message(count: int) -> None:
    views = [alarm(i, AlarmState.ALARM if i % 3 else AlarmState.OK) for i in range(count)]
    text, blocks = digest_message(views)
    check_blocks(blocks)
    assert len(blocks) <= MESSAGE_MAX_BLOCKS
    shown = len(section_texts(blocks[1:]).split("\n"))  # one line per alarm
    match = re.search(r"…and (\d+) more", str(blocks[-1]))
    hidden = int(match.group(1)) if match else 0
    assert shown + hidden == count
    assert (hidden > 0) == (count == 600)
    assert f"{count} alarms" in text


def test_an_alarm_root_message_with_everything_long_is_valid() -> None:
    _text, blocks = root_message(alarm(1))
    check_blocks(blocks)


# ---- an approval card with 40 approvers -------------------------------------------------------

APPROVERS = [f"U0APPR{i:04d}" for i in range(36)] + [f"S0GROUP{i:03d}" for i in range(4)]
ENV = EnvironmentConfig(
    region="us-east-1", cluster="dhanam-prod", approvers=APPROVERS, approvals_required=5
)


def approval_request(state: State, approvals: int) -> ApprovalRequest:
    summary = "Deploy every service to production: " + ", ".join(f"svc-{i}" for i in range(60))
    plan = Plan.build(
        summary,
        inputs={"td": "arn:3"},
        changes=[
            Change(label=f"image tag of svc-{i}", before="v1.2.0-" + "a" * 40, after="v1.3.0")
            for i in range(60)
        ],
        facts=[f"alarm {i} OK" for i in range(50)],
    )
    return ApprovalRequest.model_validate(
        {
            "id": "abc123",
            "kind": "deploy",
            "action": {},
            "plan": plan,
            "requester": "U0ALICE",
            "reason": "because " * 500,
            "env": "production",
            "service": "api",
            "channel": "C0DEPLOYS",
            "ts": "1.0",
            "required": 5,
            "approvals": [Approval(user=u, at=NOW) for u in APPROVERS[:approvals]],
            "state": state,
            "created_at": NOW,
            "expires_at": NOW + timedelta(minutes=15),
            "outcome": "o" * 4000,
            "rollout": "r" * 4000,
        }
    )


@pytest.mark.parametrize(
    ("state", "approvals"),
    [(State.PENDING, 3), (State.PENDING, 0), (State.EXECUTING, 5), (State.FAILED, 40)],
)
def test_an_approval_card_with_40_approvers_is_valid(state: State, approvals: int) -> None:
    blocks = card_blocks(approval_request(state, approvals), list(ENV.approvers), NOW)
    check_blocks(blocks)
    if state is State.PENDING:
        status = section_texts(blocks)
        assert all(p in status for p in ("<@U0APPR0035>", "<!subteam^S0GROUP003>"))


# ---- an incident timeline of 500 entries ------------------------------------------------------


def long_incident(**changes: object) -> Incident:
    base = Incident(
        id="inc-20261126-abc123",
        severity=Severity.SEV1,
        title="Payments down " + "t" * 300,
        commander="U0ALICE",
        declared_by="U0ALICE",
        started_at=NOW,
        channel="C0NEW00001",
        last_update_at=NOW,
        last_update="u" * 4000,
        last_update_by="U0BOB",
        alarm="a" * 255,
    )
    return base.model_copy(update=changes)


def test_an_incident_timeline_of_500_entries_fits_one_message() -> None:
    entries = [
        TimelineEntry(
            NOW + timedelta(minutes=i), "U0BOB" if i % 2 else "", f"update {i}: " + "e" * 90
        )
        for i in range(500)
    ]
    entries.append(TimelineEntry(NOW + timedelta(hours=9), "U0ALICE", "resolved: fixed"))
    resolved = long_incident(
        status=IncidentState.RESOLVED, resolved_at=NOW + timedelta(hours=9), summary="s" * 5000
    )
    text = incident_render.timeline_summary(resolved, entries, NOW + timedelta(hours=9))
    assert SlackWorld.refuse_message(text, None) is None
    assert len(text) <= MESSAGE_TEXT_MAX
    assert "update 0: " in text  # the first entry
    assert text.endswith("resolved: fixed")  # and the last
    shown = text.count("\n• ")
    match = re.search(r"…and (\d+) more entries", text)
    assert match is not None
    assert shown + int(match.group(1)) == len(entries)
    assert "update 499: " in text  # the tail before the resolution
    small = incident_render.timeline_summary(resolved, entries[:10], NOW)
    assert "more entries" not in small
    assert small.count("\n• ") == 10
    check_blocks(incident_render.card_blocks(resolved, [], NOW))
    check_blocks(incident_render.card_blocks(long_incident(), [], NOW))
    check_blocks(checklist_render.checklist_blocks(resolved))


# ---- App Home with 12 services x 4 environments -----------------------------------------------


def status_row(service: str, env: str, i: int) -> ServiceStatus:
    deployment = Deployment("d", "PRIMARY", f"td/{service}:{i}", "IN_PROGRESS", None, 1, 3, 2, 0)
    state = ServiceState(
        "us-east-1", "c", service, "arn", "ACTIVE", f"td/{service}:{i}", 3, 1, 2,
        (deployment,), True, True, (),
    )  # fmt: skip
    ecs = EcsView(state, f"{service}:{i}", "v1.2.3-" + "b" * 40, "sha256:" + "a" * 64)
    hold = Hold(scope=f"{service}/{env}", reason="freeze", by="U0ALICE", at=NOW)
    return ServiceStatus(
        service=service,
        env=env,
        ecs_service=service,
        ecs=Source(ecs, None, 1.0),
        alarms=Source([], None, 1.0),
        hold=Source(hold, None, 1.0),
        api=None,
        pending=Source([approval_request(State.PENDING, 1)] * 3, None, 1.0),
    )


@pytest.mark.parametrize(("services", "envs"), [(12, 4), (60, 10)])
def test_app_home_and_overview_fit_their_surfaces(services: int, envs: int) -> None:
    names = [f"dhanam-service-{i:02d}-" + "n" * 20 for i in range(services)]
    environments = ["production", "staging", "sandbox", "preview"] + [
        f"env{i}" for i in range(envs - 4)
    ]
    rows = [status_row(s, e, i) for i, s in enumerate(names) for e in environments]
    overview = Overview(rows, NOW, 12.0)
    view = home_view(overview, "/dhanam", NOW)
    assert view_errors(view) == []
    text, blocks = overview_blocks(overview, "/dhanam")
    check_blocks(blocks)
    for surface in (view["blocks"], blocks):
        body = section_texts(surface)
        listed = body.count(" 3 pending approvals")  # once on every row
        match = re.search(r"…and (\d+) more", str(surface))
        assert listed + (int(match.group(1)) if match else 0) == len(rows)
    if services == 12:  # 48 rows: every one listed, in full, on both surfaces
        assert "more" not in str(view["blocks"][-2:]) + str(blocks[-2:])
    assert text.startswith("Status:")


def test_help_and_error_blocks_are_valid() -> None:
    check_blocks(help_blocks("/dhanam"))
    check_blocks(help_blocks("/dhanam", "deploy"))
    check_blocks(error_blocks("/dhanam", "m" * 5000, "deploy SERVICE ENV"))
