"""Pure incident pieces: v3 signatures on the real samples, envelope parsing, channel names,
the Redis hash form, and the card."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from commands.incidents.checklist_render import checklist_blocks
from commands.incidents.models import (
    CHANNEL_MAX,
    Check,
    Incident,
    PdState,
    channel_name,
    from_hash,
    slug,
    to_hash,
)
from commands.incidents.render import card_blocks, pagerduty_line, topic
from commands.requests import IncidentState, Severity
from integrations.pagerduty_webhooks import MalformedWebhookError, parse_event, signature_valid

DATA = Path(__file__).resolve().parents[1] / "data" / "pagerduty"
SECRET = (DATA / "webhook-v3.aldaviva-real.secret.txt").read_text().strip()
SAMPLES = ["pagey.ping", *(f"incident.{k}" for k in ("triggered", "acknowledged", "annotated"))]
SAMPLES.append("incident.resolved")
START = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def sample(name: str) -> tuple[bytes, str]:
    body = (DATA / f"webhook-v3-{name}.aldaviva-real.body.json").read_bytes()
    signature = (DATA / f"webhook-v3-{name}.aldaviva-real.signature.txt").read_text().strip()
    return body, signature


@pytest.mark.parametrize("name", SAMPLES)
def test_real_samples_verify_and_tampering_does_not(name: str) -> None:
    body, signature = sample(name)
    assert signature_valid(body, signature, [SECRET])
    assert signature_valid(body, signature, ["old-secret", SECRET])  # rotation
    assert signature_valid(body, f"v1={'0' * 64},{signature}", [SECRET])  # several values
    assert not signature_valid(body + b" ", signature, [SECRET])
    assert not signature_valid(body, signature, ["another-secret"])
    assert not signature_valid(body, signature, [])
    assert not signature_valid(body, "", [SECRET])
    assert not signature_valid(body, signature.replace("v1=", "v0="), [SECRET])


def test_pagerduty_worked_example_verifies() -> None:
    example = json.loads(
        (DATA / "webhook-v3-signature-worked-example.go-pagerduty.json").read_text()
    )
    body = example["body"].encode()
    assert signature_valid(body, example["header"]["X-PagerDuty-Signature"], [example["secret"]])
    event = parse_event(body)
    assert event.event_type == "incident.priority_updated"
    assert event.priority == "P1"
    assert event.assignees == ["User 123"]


def test_parsed_events() -> None:
    ack = parse_event(sample("incident.acknowledged")[0])
    assert (ack.incident_id, ack.status, ack.agent) == ("Q2CKYRLH85UNN4", "acknowledged", "Ben")
    assert ack.incident_key == "dfead9d88e0649e8b7dee514b1875756"
    assert ack.service_id == "PNE3JZM"
    assert ack.number == 37
    assert ack.is_incident
    note = parse_event(sample("incident.annotated")[0])
    assert note.incident_id == "Q2CKYRLH85UNN4"
    assert note.note == "Resolution Note: I'm resolving it"
    ping = parse_event(sample("pagey.ping")[0])
    assert not ping.is_incident
    with pytest.raises(MalformedWebhookError):
        parse_event(b"[1, 2]")
    with pytest.raises(MalformedWebhookError):
        parse_event(b"\xff")


def test_channel_names() -> None:
    assert channel_name("API returning 5xx", START) == "inc-20261126-api-returning-5xx"
    assert channel_name("API returning 5xx", START, 2) == "inc-20261126-api-returning-5xx-2"
    assert slug("  Ünïcode / émoji 🔥!! ") == "n-code-moji"
    assert channel_name("🔥🔥", START) == "inc-20261126-incident"
    long = channel_name("x" * 300, START, 99)
    assert len(long) <= CHANNEL_MAX
    assert long.endswith("-99")
    assert not channel_name("a" * 66 + " b", START).endswith("-")


def incident(**changes: object) -> Incident:
    base = Incident(
        id="inc-20261126-abc123",
        severity=Severity.SEV1,
        title="API returning 5xx",
        commander="U0ALICE",
        declared_by="U0ALICE",
        started_at=START,
        channel="C0NEW00001",
        last_update_at=START,
        pd_state=PdState.TRIGGERED,
    )
    return base.model_copy(update=changes)


def test_hash_round_trip() -> None:
    original = incident(
        checks={"dns": Check(by="U0BOB", at=START + timedelta(minutes=3))},
        resolved_at=START + timedelta(hours=1, minutes=5),
        status=IncidentState.RESOLVED,
        pd_attempts=3,
    )
    assert from_hash(to_hash(original)) == original
    assert all(isinstance(v, str) for v in to_hash(original).values())


def test_card_and_pagerduty_line() -> None:
    now = START + timedelta(hours=1, minutes=5)
    resolved = incident(
        status=IncidentState.RESOLVED, resolved_at=now, summary="rolled back", pd_url="https://x"
    )
    text = json.dumps(card_blocks(resolved, [], now))
    assert "resolved after 1 h 5 min" in text
    assert "rolled back" in text
    assert "<https://x|open in PagerDuty>" in text
    assert "SEV1" in topic(resolved)
    assert "acknowledged by Ben" in pagerduty_line(
        incident(pd_state=PdState.ACKNOWLEDGED, pd_ack_by="Ben")
    )
    assert "retrying" in pagerduty_line(incident(pd_state=PdState.PENDING, pd_attempts=2))
    assert "page the on-call by hand" in pagerduty_line(incident(pd_state=PdState.FAILED))
    assert pagerduty_line(incident(pd_state=PdState.OFF)) == "not configured"


def test_checklist_marks_ticked_items() -> None:
    ticked = incident(checks={"ecs": Check(by="U0BOB", at=START)})
    blocks = checklist_blocks(ticked)
    element = blocks[1]["elements"][0]
    assert element["type"] == "checkboxes"
    assert [o["value"] for o in element["initial_options"]] == ["ecs"]
    assert "1 of 7 done" in blocks[0]["text"]["text"]
    assert "initial_options" not in checklist_blocks(incident())[1]["elements"][0]


def test_the_card_and_the_nudge_name_the_configured_slash_command() -> None:
    from commands.incidents.render import nudge  # noqa: PLC0415

    card = str(card_blocks(incident(), [], START, None, "/ops"))
    assert "`/ops incident update|status|commander|resolve` in this channel" in card
    assert "/dhanam" not in card
    assert "`/ops incident update TEXT`" in nudge(incident(), 35, "/ops")
