"""User text is inert: the helper (properties), the parser's un-escaping, and each renderer
that echoes typed text into mrkdwn (cards, topic, announcement, timeline, audit, status)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from approvals.models import Approval, ApprovalRequest, Plan, State
from approvals.policy import Hold
from commands.incidents import render
from commands.incidents.models import Incident, PdState
from commands.incidents.store import TimelineEntry
from commands.operations.card import card_blocks as approval_card_blocks
from commands.operations.state import _audit_line
from commands.parser import Parser
from commands.requests import (
    DeployRequest,
    IncidentDeclareRequest,
    IncidentState,
    LockRequest,
    Severity,
)
from commands.status.models import ServiceStatus, Source
from commands.status.render import detail_blocks
from core.config import load_config
from core.text import fit, inert, uninert
from integrations.pagerduty_webhooks import PdEvent

CONFIG = load_config(Path(__file__).resolve().parents[2] / "examples" / "dhanam.example.toml")
PARSER = Parser(CONFIG)
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
HOSTILE = (
    "<!channel> ship it <@U0MALLORY> <#C0SECRET> <!subteam^S0OPS> <https://evil.example|click>"
)
# Slack markup a user could smuggle in: a special mention, a user/channel/group mention, a link.
TOKENS = ["<!channel>", "<!here>", "<!everyone>", "<@U0MALLORY>", "<#C0SECRET>", "<!subteam^"]
LIVE = re.compile(r"<(?:!(?:channel|here|everyone|subteam)|@U0MALLORY|#C0SECRET|https?://evil)")


def assert_inert(rendered: object) -> None:
    text = rendered if isinstance(rendered, str) else json.dumps(rendered, ensure_ascii=False)
    assert not LIVE.search(text), text
    assert re.search(r"&lt;[!@#h]", text), text  # the typed markup is there, shown literally


# -- the helper ------------------------------------------------------------------------------


def test_slack_tokens_come_out_escaped() -> None:
    assert inert("<!channel>") == "&lt;!channel&gt;"
    assert inert("<@U0BOB> & <https://x|y>") == "&lt;@U0BOB&gt; &amp; &lt;https://x|y&gt;"
    assert inert("a &lt; b") == "a &amp;lt; b"  # typed literally: shown literally
    assert inert("") == ""
    assert inert("plain words, *bold* _it_ `code`") == "plain words, *bold* _it_ `code`"


@given(st.text())
def test_inert_has_no_angle_brackets_and_round_trips(text: str) -> None:
    escaped = inert(text)
    assert "<" not in escaped
    assert ">" not in escaped
    assert uninert(escaped) == text
    # every & it leaves starts one of the three entities, so Slack can decode it unambiguously
    assert re.fullmatch(r"(?:[^&]|&amp;|&lt;|&gt;)*", escaped, flags=re.DOTALL)


@given(st.text(alphabet=st.sampled_from("<>&ab !@#|"), max_size=80))
def test_no_slack_token_survives(text: str) -> None:
    escaped = inert(text)
    assert not any(token in escaped for token in TOKENS)


@given(st.text(max_size=300), st.integers(min_value=30, max_value=250))
def test_fit_stays_within_the_limit_and_never_cuts_an_entity(text: str, limit: int) -> None:
    fitted = fit("SEV2 · IC <@U0ALICE> · ", text, limit)
    assert len(fitted) <= limit
    assert fitted.startswith("SEV2 · IC <@U0ALICE> · ")  # the bot's own mention stays live
    body = fitted.removeprefix("SEV2 · IC <@U0ALICE> · ").removesuffix("…")
    assert "<" not in body
    assert re.fullmatch(r"(?:[^&]|&amp;|&lt;|&gt;)*", body, flags=re.DOTALL)
    assert text.startswith(uninert(body))


# -- the parser hands over the text as typed (Slack's entities un-escaped, once) ---------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("deploy api production v1.3.0 --reason " + HOSTILE, HOSTILE),
        ('deploy api production v1.3.0 --reason "<!here> a &amp; b"', "<!here> a & b"),
        ("deploy api production v1.3.0 --reason a &lt;b&gt; &amp;amp;", "a <b> &amp;"),
    ],
)
def test_reason_arrives_unescaped_whether_quoted_or_not(line: str, reason: str) -> None:
    request = PARSER.parse(line)
    assert isinstance(request, DeployRequest)
    assert request.reason == reason


def test_lock_reason_and_title_arrive_unescaped() -> None:
    lock = PARSER.parse("lock api production &lt;x&gt; <!here>")
    assert isinstance(lock, LockRequest)
    assert lock.reason == "<x> <!here>"
    declared = PARSER.parse("incident declare sev2 <!here> db &amp; cache slow")
    assert isinstance(declared, IncidentDeclareRequest)
    assert declared.title == "<!here> db & cache slow"


# -- the renderers ---------------------------------------------------------------------------


def approval(**extra: object) -> ApprovalRequest:
    fields: dict[str, object] = {
        "id": "abc123",
        "kind": "deploy",
        "action": {},
        "plan": Plan.build("Deploy api to production: v1.2.0 → v1.3.0", inputs={"td": "arn:3"}),
        "requester": "U0ALICE",
        "reason": HOSTILE,
        "env": "production",
        "service": "api",
        "channel": "C0DEPLOYS",
        "ts": "1.0",
        "required": 1,
        "state": State.PENDING,
        "created_at": NOW,
        "expires_at": NOW + timedelta(minutes=15),
    }
    fields.update(extra)
    return ApprovalRequest.model_validate(fields)


def test_approval_card_shows_the_reason_but_keeps_the_bots_mentions() -> None:
    pending = json.dumps(approval_card_blocks(approval(), ["U0BOB"], NOW), ensure_ascii=False)
    assert_inert(pending)
    assert "&lt;https://evil.example|click&gt;" in pending
    assert "<@U0ALICE>" in pending  # requester, mentioned by the bot
    assert "<@U0BOB>" in pending  # the approver it waits for
    done = approval(state=State.DENIED, decided_by="U0BOB", approvals=[])
    assert_inert(approval_card_blocks(done, [], NOW))
    approved = approval(state=State.SUCCEEDED, approvals=[Approval(user="U0BOB", at=NOW)])
    assert_inert(approval_card_blocks(approved, [], NOW))


def incident(**changes: object) -> Incident:
    base = Incident(
        id="inc-20261126-abc123",
        severity=Severity.SEV2,
        title="<!here> db slow <https://evil.example|status page>",
        commander="U0ALICE",
        declared_by="U0ALICE",
        started_at=NOW,
        channel="C0NEW00001",
        last_update_at=NOW,
        last_update="<!channel> still slow <@U0MALLORY>",
        last_update_by="U0BOB",
        pd_state=PdState.ACKNOWLEDGED,
        pd_ack_by="<!everyone> Ben",
    )
    return base.model_copy(update=changes)


def test_incident_card_text_topic_and_announcement_are_inert() -> None:
    open_ = incident()
    blocks = render.card_blocks(open_, [], NOW)
    # the header is plain_text: Slack parses nothing there, the title goes in as typed
    assert blocks[0]["text"] == {
        "type": "plain_text",
        "text": "SEV2 <!here> db slow <https://evil.example|status page> — investigating",
    }
    assert_inert(blocks[1:])
    assert "<@U0ALICE>" in json.dumps(blocks)  # commander and declarer stay live mentions
    assert_inert(render.card_text(open_))
    assert_inert(render.topic(open_))
    assert render.topic(open_).startswith("SEV2 · investigating · IC @U0ALICE · ")  # no token
    assert_inert(render.announcement(open_, NOW))
    assert "<#C0NEW00001>" in render.announcement(open_, NOW)
    resolved = incident(
        status=IncidentState.RESOLVED, resolved_at=NOW + timedelta(hours=1), summary="<!here> fixed"
    )
    later = NOW + timedelta(hours=1)
    assert_inert(render.card_blocks(resolved, [], later)[1:])
    assert_inert(render.announcement(resolved, later))


def test_long_hostile_title_fits_the_topic_without_a_broken_entity() -> None:
    text = render.topic(incident(title="<!here>&" * 60))
    assert len(text) <= render.TOPIC_MAX
    assert text.endswith("…")
    assert not re.search(r"&(?!amp;|lt;|gt;)", text)
    assert_inert(text)


def test_timeline_summary_title_is_inert_and_entries_are_kept() -> None:
    entries = [TimelineEntry(NOW, "U0BOB", "update: &lt;!here&gt; slow")]  # stored inert
    text = render.timeline_summary(incident(), entries, NOW + timedelta(minutes=5))
    assert_inert(text)
    assert "<@U0BOB>: update: &lt;!here&gt; slow" in text


def test_pagerduty_names_and_notes_are_inert() -> None:
    assert_inert(render.pagerduty_line(incident()))
    event = PdEvent(
        id="e1",
        event_type="incident.annotated",
        agent="<!channel>",
        incident_id="P1",
        title="<!here> down",
        html_url="https://acme.pagerduty.com/incidents/P1",
        note="<@U0MALLORY> <https://evil.example|x>",
    )
    assert_inert(render.pd_note_text(event))
    only = render.pd_only_text(event)
    assert_inert(only)
    assert "<https://acme.pagerduty.com/incidents/P1|&lt;!here&gt; down>" in only


def test_audit_lines_escape_typed_notes_only() -> None:
    locked = {
        "event": "locked",
        "title": "locked api in production",
        "user": "U0CAROL",
        "note": "<!channel> migration",
        "at": NOW.isoformat(),
    }
    line = _audit_line(locked)
    assert "<@U0CAROL>" in line
    assert "&lt;!channel&gt; migration" in line
    assert_inert(line)
    denied = {
        "event": "denied",
        "title": "Deploy api",
        "user": "U0BOB",
        "note": "denied by <@U0BOB>",
    }
    assert _audit_line(denied).endswith("— denied by <@U0BOB>")  # the bot's own mention
    with_reason = {"event": "requested", "user": "U0ALICE", "reason": "<!here> go"}
    assert_inert(_audit_line(with_reason))


def test_status_shows_the_lock_reason_inert() -> None:
    hold = Hold(scope="api:production", reason="<!here> db migration", by="U0CAROL", at=NOW)
    status = ServiceStatus(
        service="api",
        env="production",
        ecs_service="dhanam-api",
        ecs=Source(None, "unavailable", 1.0),
        alarms=Source([], None, 1.0),
        hold=Source(hold, None, 1.0),
        api=None,
        pending=Source([], None, 1.0),
    )
    _, blocks = detail_blocks(status, "/dhanam")
    text = json.dumps(blocks, ensure_ascii=False)
    assert "&lt;!here&gt; db migration" in text
    assert "<@U0CAROL>" in text
    assert_inert(text)
