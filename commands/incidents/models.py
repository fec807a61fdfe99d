"""Incidents as stored: the model, its Redis hash form, and the pure rules around it
(channel names, PagerDuty severities, the Total System Outage checklist)."""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from approvals.models import from_ms, utc_ms
from commands.requests import IncidentState, Severity
from core.text import duration
from integrations.pagerduty import EventSeverity

CHANNEL_MAX = 80  # Slack's limit on a channel name
_SUFFIX_ROOM = 4  # "-99"


class PdState(StrEnum):
    """PagerDuty as the card shows it."""

    OFF = "off"  # no routing key configured
    PENDING = "pending"  # trigger being sent (or retried after a failure)
    FAILED = "failed"  # gave up after the bounded retries, or refused
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


PD_SEVERITY = {
    Severity.SEV1: EventSeverity.CRITICAL,
    Severity.SEV2: EventSeverity.ERROR,
    Severity.SEV3: EventSeverity.WARNING,
}

# The deployment guide's "Total System Outage" checklist, in its order (option value, label).
CHECKLIST: tuple[tuple[str, str], ...] = (
    ("aws_health", "Check the AWS service health dashboard"),
    ("dns", "Verify DNS resolution"),
    ("cloudfront", "Check the CloudFront distribution"),
    ("ecs", "Review ECS service status"),
    ("rds", "Check RDS availability"),
    ("cloudwatch", "Review CloudWatch logs"),
    ("dr_region", "Activate the DR region (us-west-2)"),
)
CHECKLIST_LABELS = dict(CHECKLIST)
BOT = "dhanam"  # who a tick the bot made is by ("checked by dhanam"): never a Slack user id


class Check(BaseModel):
    model_config = ConfigDict(frozen=True)

    by: str
    at: datetime


class Incident(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    severity: Severity
    title: str
    status: IncidentState = IncidentState.INVESTIGATING
    commander: str
    declared_by: str
    started_at: datetime
    channel: str
    card_ts: str = ""
    checklist_ts: str = ""
    announce_channel: str = ""
    announce_ts: str = ""
    last_update: str = ""
    last_update_at: datetime
    last_update_by: str = ""
    last_nudge_at: datetime | None = None
    resolved_at: datetime | None = None
    summary: str = ""
    alarm: str = ""  # the CloudWatch alarm it was declared from, if any
    pd_state: PdState = PdState.OFF
    pd_error: str = ""
    pd_attempts: int = 0
    pd_incident_id: str = ""
    pd_url: str = ""
    pd_ack_by: str = ""
    pd_escalated: str = ""  # to whom (assignees), when PagerDuty escalated or reassigned
    pd_priority: str = ""
    pd_resolved_by: str = ""
    checks: dict[str, Check] = Field(default_factory=dict)

    @property
    def open(self) -> bool:
        return self.status is not IncidentState.RESOLVED

    def duration(self, now: datetime) -> str:
        """How long it has lasted, as people read it ("45 s", "12 min", "2 h 5 min")."""
        return duration((self.resolved_at or now) - self.started_at)


_MS_FIELDS = ("started_at", "last_update_at", "last_nudge_at", "resolved_at")


def to_hash(incident: Incident) -> dict[str, str]:
    data = incident.model_dump(mode="json", exclude={"checks", *_MS_FIELDS})
    out = {k: "" if v is None else str(v) for k, v in data.items()}
    for name in _MS_FIELDS:
        moment = getattr(incident, name)
        out[name] = str(utc_ms(moment)) if moment is not None else ""
    for key, check in incident.checks.items():
        out[f"check:{key}"] = check_value(check)
    return out


def check_value(check: Check) -> str:
    return json.dumps({"by": check.by, "at": utc_ms(check.at)})


def from_hash(fields: dict[str, str]) -> Incident:
    data: dict[str, object] = {
        k: v for k, v in fields.items() if not k.startswith("check:") and k not in _MS_FIELDS
    }
    for name in _MS_FIELDS:
        if fields.get(name):
            data[name] = from_ms(fields[name])
    data["pd_attempts"] = int(fields.get("pd_attempts") or 0)
    checks = {}
    for key, raw in fields.items():
        if key.startswith("check:") and raw:
            value = json.loads(raw)
            checks[key[6:]] = Check(by=value["by"], at=from_ms(value["at"]))
    data["checks"] = checks
    return Incident.model_validate(data)


def new_incident_id(now: datetime) -> str:
    return f"inc-{now:%Y%m%d}-{secrets.token_hex(3)}"


def slug(title: str) -> str:
    text = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return text or "incident"


def channel_name(title: str, started: datetime, attempt: int = 1) -> str:
    """``inc-YYYYMMDD-<slug>``, then ``-2``, ``-3``… for later attempts; at most 80 chars."""
    prefix = f"inc-{started:%Y%m%d}-"
    body = slug(title)[: CHANNEL_MAX - len(prefix) - _SUFFIX_ROOM].rstrip("-") or "incident"
    return prefix + body + (f"-{attempt}" if attempt > 1 else "")
