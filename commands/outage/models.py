"""The sev1 checklist's checks, as values: a check's verdict, its one-line evidence, when."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

# The deployment guide's "Total System Outage" steps, in order; the incident checklist's option
# values (commands/incidents/models.py CHECKLIST) are these.
STEPS: tuple[str, ...] = (
    "aws_health",
    "dns",
    "cloudfront",
    "ecs",
    "rds",
    "cloudwatch",
    "dr_region",
)


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password; ✓ checked, fine
    FAIL = "fail"  # ✗ checked, a problem
    UNKNOWN = "unknown"  # ? no answer in time, or the source refused
    UNAVAILABLE = "not available"  # a dash: no support plan, not configured…


MARKS = {
    Verdict.PASS: "✓",
    Verdict.FAIL: "✗",
    Verdict.UNKNOWN: "?",
    Verdict.UNAVAILABLE: "\u2013",  # an en dash
}


@dataclass(frozen=True)
class Finding:
    """What one check found: its verdict and one line of evidence (mrkdwn, made inert)."""

    verdict: Verdict
    evidence: str


class CheckResult(BaseModel):
    """A finding with its step, when it was checked and how long the check took."""

    model_config = ConfigDict(frozen=True)

    step: str
    verdict: Verdict
    evidence: str
    checked_at: datetime
    ms: float


Check = Callable[[], Awaitable[Finding]]
