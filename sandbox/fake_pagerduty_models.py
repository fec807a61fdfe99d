"""Incidents, recorded calls and Events API v2 validation for the fake PagerDuty.

Shapes follow tests/data/pagerduty/: the REST incident, the v3 webhook ``data`` of an
incident (webhook-v3-incident.*.aldaviva-real.body.json) and the Events API v2 error
bodies (events-v2-response-*.json).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

API_BASE = "https://api.pagerduty.com"
SEVERITIES = ("critical", "error", "warning", "info")
EVENT_ACTIONS = ("trigger", "acknowledge", "resolve")
HIGH_URGENCY = frozenset({"critical", "error"})
ESCALATION_POLICY_ID = "P0ESCAL"
ESCALATION_POLICY_NAME = "Dhanam SRE"
ROUTING_KEY_LENGTH = 32
DEDUP_KEY_MAX = 255

EVENT_INVALID = {"status": "invalid event", "message": "Event object is invalid"}
EVENT_UNRECOGNIZED = {
    "status": "Unrecognized object",
    "message": "Event object format is unrecognized",
    "errors": ["JSON parse error"],
}
EVENT_THROTTLED = {
    "status": "throttle exceeded",
    "message": "Requests for this service are arriving too quickly.  Please retry later.",
    "errors": ["Enhance Your Calm."],
}


def now_utc() -> datetime:
    return datetime.now(UTC)


def iso_seconds(moment: datetime) -> str:
    """``2025-04-07T03:47:13Z``, as PagerDuty writes created_at."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_millis(moment: datetime) -> str:
    """``2025-04-07T03:47:13.546Z``, as PagerDuty writes occurred_at."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def webhook_event_id() -> str:
    """26 upper-case alphanumerics, like ``01FKZSRAQJLP9S3OPM2VALGUPJ``."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return "01" + "".join(secrets.choice(alphabet) for _ in range(24))


def rest_error(message: str, code: int, errors: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "code": code}
    if errors:
        body["errors"] = errors
    return {"error": body}


def reference(kind: str, ref_id: str, summary: str, html_url: str) -> dict[str, Any]:
    """A ``*_reference`` object; ``kind`` is e.g. ``user``, ``service``."""
    plural = "escalation_policies" if kind == "escalation_policy" else f"{kind}s"
    return {
        "html_url": html_url,
        "id": ref_id,
        "self": f"{API_BASE}/{plural}/{ref_id}",
        "summary": summary,
        "type": f"{kind}_reference",
    }


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the fake answered."""

    method: str
    path: str
    body: Any  # parsed JSON, or the raw text when it was not JSON
    status: int
    at: float  # time.monotonic()
    headers: dict[str, str] = field(default_factory=dict)
    response: Any = None


@dataclass
class PDFault:
    status: int
    path_prefix: str | None
    remaining: int | None
    until: float | None

    def matches(self, path: str, now: float) -> bool:
        if self.path_prefix is not None and not path.startswith(self.path_prefix):
            return False
        if self.until is not None:
            return now < self.until
        return self.remaining is None or self.remaining > 0


@dataclass
class FakeIncident:
    id: str
    number: int
    title: str
    dedup_key: str
    severity: str
    service_id: str
    service_name: str
    html_base: str  # https://<subdomain>.pagerduty.com
    status: str = "triggered"
    alert_count: int = 1  # triggers folded into this incident by dedup_key
    created_at: datetime = field(default_factory=now_utc)
    last_status_change_at: datetime = field(default_factory=now_utc)
    last_status_change_by: str | None = None  # email from the REST From header
    acknowledgers: list[str] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def urgency(self) -> str:
        return "high" if self.severity in HIGH_URGENCY else "low"

    @property
    def html_url(self) -> str:
        return f"{self.html_base}/incidents/{self.id}"

    def service_ref(self) -> dict[str, Any]:
        html = f"{self.html_base}/services/{self.service_id}"
        return reference("service", self.service_id, self.service_name, html)

    def escalation_ref(self) -> dict[str, Any]:
        html = f"{self.html_base}/escalation_policies/{ESCALATION_POLICY_ID}"
        return reference("escalation_policy", ESCALATION_POLICY_ID, ESCALATION_POLICY_NAME, html)

    def user_ref(self, email: str) -> dict[str, Any]:
        user_id = "P" + email.split("@", 1)[0].upper()[:6]
        return reference("user", user_id, email, f"{self.html_base}/users/{user_id}")

    def set_status(self, status: str, by: str | None = None) -> None:
        if status == self.status:
            return
        self.status = status
        self.last_status_change_at = now_utc()
        self.last_status_change_by = by
        if status == "acknowledged" and by is not None:
            self.acknowledgers.append(by)

    def to_rest(self) -> dict[str, Any]:
        """The incident as the REST API (``GET /incidents/{id}``) returns it."""
        return {
            "id": self.id,
            "type": "incident",
            "summary": f"[#{self.number}] {self.title}",
            "self": f"{API_BASE}/incidents/{self.id}",
            "html_url": self.html_url,
            "incident_number": self.number,
            "title": self.title,
            "description": self.title,
            "created_at": iso_seconds(self.created_at),
            "updated_at": iso_seconds(self.last_status_change_at),
            "status": self.status,
            "incident_key": self.dedup_key,
            "service": self.service_ref(),
            "assignments": [],
            "assigned_via": "escalation_policy",
            "last_status_change_at": iso_seconds(self.last_status_change_at),
            "last_status_change_by": (
                self.user_ref(self.last_status_change_by)
                if self.last_status_change_by
                else self.service_ref()
            ),
            "alert_counts": {
                "all": self.alert_count,
                "triggered": self.alert_count if self.status != "resolved" else 0,
                "resolved": self.alert_count if self.status == "resolved" else 0,
            },
            "escalation_policy": self.escalation_ref(),
            "teams": [],
            "urgency": self.urgency,
            "acknowledgements": [
                {"at": iso_seconds(self.last_status_change_at), "acknowledger": self.user_ref(e)}
                for e in self.acknowledgers
                if self.status == "acknowledged"
            ],
            "priority": None,
            "resolve_reason": None,
            "incident_type": {"name": "incident_default"},
        }

    def to_webhook_data(self) -> dict[str, Any]:
        """The ``event.data`` of an ``incident.*`` v3 webhook (same keys, same order)."""
        return {
            "id": self.id,
            "type": "incident",
            "self": f"{API_BASE}/incidents/{self.id}",
            "html_url": self.html_url,
            "number": self.number,
            "status": self.status,
            "incident_key": self.dedup_key,
            "created_at": iso_seconds(self.created_at),
            "title": self.title,
            "service": self.service_ref(),
            "assignees": [],
            "escalation_policy": self.escalation_ref(),
            "teams": [],
            "priority": None,
            "urgency": self.urgency,
            "conference_bridge": None,
            "resolve_reason": None,
            "incident_type": {"name": "incident_default"},
        }

    def note_webhook_data(self, note: dict[str, Any]) -> dict[str, Any]:
        """The ``event.data`` of an ``incident.annotated`` webhook."""
        return {
            "incident": {
                "html_url": self.html_url,
                "id": self.id,
                "self": f"{API_BASE}/incidents/{self.id}",
                "summary": self.title,
                "type": "incident_reference",
            },
            "id": note["id"],
            "content": note["content"],
            "trimmed": False,
            "type": "incident_note",
        }


def _blank(value: Any) -> bool:
    return not isinstance(value, str) or not value.strip()


def validate_event(body: dict[str, Any]) -> list[str]:
    """Events API v2 validation; the error strings go into the 400 ``errors`` list."""
    errors: list[str] = []
    routing_key = body.get("routing_key")
    if _blank(routing_key):
        errors.append("'routing_key' is missing or blank")
    elif len(str(routing_key)) != ROUTING_KEY_LENGTH:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    action = body.get("event_action")
    if _blank(action):
        errors.append("'event_action' is missing or blank")
    elif action not in EVENT_ACTIONS:
        errors.append("'event_action' is invalid (must be one of trigger, acknowledge, resolve)")
    dedup_key = body.get("dedup_key")
    if dedup_key is not None and (not isinstance(dedup_key, str) or len(dedup_key) > DEDUP_KEY_MAX):
        errors.append("'dedup_key' is invalid (a string of at most 255 characters)")
    if action in ("acknowledge", "resolve") and _blank(dedup_key):
        errors.append("'dedup_key' is missing or blank")
    if action == "trigger":
        payload = body.get("payload")
        if not isinstance(payload, dict):
            errors.append("'payload' is missing or blank")
        else:
            errors += [
                f"'payload.{key}' is missing or blank"
                for key in ("summary", "source", "severity")
                if _blank(payload.get(key))
            ]
            severity = payload.get("severity")
            if not _blank(severity) and severity not in SEVERITIES:
                errors.append(
                    "'payload.severity' is invalid (must be one of critical, error, warning, info)"
                )
    return errors


def validate_change_event(body: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    routing_key = body.get("routing_key")
    if _blank(routing_key) or len(str(routing_key)) != ROUTING_KEY_LENGTH:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    payload = body.get("payload")
    if not isinstance(payload, dict) or _blank(payload.get("summary")):
        errors.append("'payload.summary' is missing or blank")
    return errors


def webhook_envelope(
    incident: FakeIncident, event_type: str, agent: dict[str, Any] | None = None
) -> bytes:
    """A v3 webhook body (compact JSON, as PagerDuty sends it) for ``event_type``
    (``incident.triggered``, ``incident.acknowledged``…) about ``incident`` as it is now;
    ``incident.annotated`` carries the incident's latest note."""
    if event_type == "incident.annotated":
        if not incident.notes:
            raise ValueError(f"incident {incident.id} has no note to announce")
        data = incident.note_webhook_data(incident.notes[-1])
    else:
        data = incident.to_webhook_data()
    if agent is None:
        agent = incident.user_ref(incident.last_status_change_by or "responder@dhanam.dev")
    envelope = {
        "event": {
            "id": webhook_event_id(),
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": iso_millis(now_utc()),
            "agent": agent,
            "client": None,
            "data": data,
        }
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def webhook_signature(body: bytes, secret: str) -> str:
    """``X-PagerDuty-Signature`` value: ``v1=`` + hex HMAC-SHA256 of the raw body."""
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
