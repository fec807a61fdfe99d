"""PagerDuty v3 webhooks: the signature check and the envelope, read into a flat event.

`X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]` — hex HMAC-SHA256 of the raw body with the
subscription secret. Several values (and several configured secrets) appear while a secret
rotates: accept when any value matches any secret, compared in constant time. No secret
configured accepts nothing (fail closed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

INCIDENT_EVENTS = frozenset(
    {
        "incident.triggered",
        "incident.acknowledged",
        "incident.unacknowledged",
        "incident.resolved",
        "incident.reopened",
        "incident.escalated",
        "incident.reassigned",
        "incident.priority_updated",
        "incident.annotated",
    }
)


def signature_valid(body: bytes, header: str, secrets: Iterable[str]) -> bool:
    """True when one ``v1=`` value of ``header`` is the HMAC of ``body`` under a secret."""
    # Compared as bytes: compare_digest raises TypeError on a str that is not ASCII, and a
    # header is whatever the sender put there. Non-ASCII bytes simply never match hex.
    offered = [
        part.strip()[3:].lower().encode("utf-8", errors="surrogateescape")
        for part in header.split(",")
        if part.strip().startswith("v1=")
    ]
    if not offered:
        return False
    ok = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
        for value in offered:
            # Every pair is compared (no early exit): the timing says nothing about which.
            ok |= hmac.compare_digest(expected, value)
    return ok


class MalformedWebhookError(ValueError):
    """The body is not a v3 envelope."""


@dataclass(frozen=True)
class PdEvent:
    """One v3 webhook event. Incident fields are empty for other resource types."""

    id: str
    event_type: str
    occurred_at: str = ""
    agent: str = ""  # who did it, e.g. "Ben"
    incident_id: str = ""
    incident_key: str = ""
    number: int | None = None
    title: str = ""
    status: str = ""
    html_url: str = ""
    service_id: str = ""
    service_name: str = ""
    urgency: str = ""
    priority: str = ""
    assignees: list[str] = field(default_factory=list)
    note: str = ""  # incident.annotated: the note's content

    @property
    def is_incident(self) -> bool:
        return self.event_type in INCIDENT_EVENTS and bool(self.incident_id)

    @property
    def verb(self) -> str:
        """``incident.priority_updated`` -> ``priority updated``."""
        return self.event_type.partition(".")[2].replace("_", " ")


def _summary(ref: Any) -> str:
    return str(ref.get("summary") or ref.get("id") or "") if isinstance(ref, dict) else ""


def parse_event(raw: bytes) -> PdEvent:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedWebhookError("body is not JSON") from exc
    event = body.get("event") if isinstance(body, dict) else None
    if not isinstance(event, dict) or not isinstance(event.get("event_type"), str):
        raise MalformedWebhookError("not a PagerDuty v3 webhook envelope")
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    assert isinstance(data, dict)
    common: dict[str, Any] = {
        "id": str(event.get("id") or ""),
        "event_type": event["event_type"],
        "occurred_at": str(event.get("occurred_at") or ""),
        "agent": _summary(event.get("agent")),
    }
    if data.get("type") == "incident_note":
        incident = data.get("incident") if isinstance(data.get("incident"), dict) else {}
        assert isinstance(incident, dict)
        return PdEvent(
            **common,
            incident_id=str(incident.get("id") or ""),
            title=str(incident.get("summary") or ""),
            html_url=str(incident.get("html_url") or ""),
            note=str(data.get("content") or ""),
        )
    if data.get("type") != "incident":
        return PdEvent(**common)
    service = data.get("service") if isinstance(data.get("service"), dict) else {}
    assert isinstance(service, dict)
    number = data.get("number")
    return PdEvent(
        **common,
        incident_id=str(data.get("id") or ""),
        incident_key=str(data.get("incident_key") or ""),
        number=number if isinstance(number, int) else None,
        title=str(data.get("title") or ""),
        status=str(data.get("status") or ""),
        html_url=str(data.get("html_url") or ""),
        service_id=str(service.get("id") or ""),
        service_name=str(service.get("summary") or ""),
        urgency=str(data.get("urgency") or ""),
        priority=_summary(data.get("priority")),
        assignees=[_summary(a) for a in data.get("assignees") or [] if _summary(a)],
    )
