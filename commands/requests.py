"""Typed requests: what a line of `/dhanam …` means once it has been understood."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Severity(StrEnum):
    SEV1 = "sev1"
    SEV2 = "sev2"
    SEV3 = "sev3"


class IncidentState(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HelpRequest(_Request):
    kind: Literal["help"] = "help"
    topic: str | None = None


class DeployRequest(_Request):
    kind: Literal["deploy"] = "deploy"
    service: str
    env: str
    tag: str
    reason: str | None = None
    break_glass: bool = False


class RollbackRequest(_Request):
    kind: Literal["rollback"] = "rollback"
    service: str
    env: str
    to_revision: int | None = Field(default=None, ge=1)
    reason: str | None = None
    break_glass: bool = False


class ScaleRequest(_Request):
    kind: Literal["scale"] = "scale"
    service: str
    env: str
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)
    desired: int | None = Field(default=None, ge=0)
    reason: str | None = None
    break_glass: bool = False


class DbRestoreRequest(_Request):
    kind: Literal["db_restore"] = "db_restore"
    env: str
    to: datetime | Literal["latest"]
    reason: str | None = None
    break_glass: bool = False


class RunRequest(_Request):
    kind: Literal["run"] = "run"
    service: str
    env: str
    task: str
    reason: str | None = None
    break_glass: bool = False


class LogsRequest(_Request):
    kind: Literal["logs"] = "logs"
    service: str
    env: str
    since: timedelta | datetime = timedelta(minutes=15)  # a window back from now, or a moment
    grep: str | None = None
    limit: int = Field(default=50, ge=1, le=500)


class DrStatusRequest(_Request):
    kind: Literal["dr_status"] = "dr_status"


class DrActivateRequest(_Request):
    kind: Literal["dr_activate"] = "dr_activate"
    reason: str | None = None
    break_glass: bool = False


class StatusRequest(_Request):
    kind: Literal["status"] = "status"
    service: str | None = None
    env: str | None = None


class LockRequest(_Request):
    kind: Literal["lock"] = "lock"
    service: str
    env: str
    reason: str


class UnlockRequest(_Request):
    kind: Literal["unlock"] = "unlock"
    service: str
    env: str


class ApprovalsRequest(_Request):
    kind: Literal["approvals"] = "approvals"


class AuditRequest(_Request):
    kind: Literal["audit"] = "audit"
    count: int = Field(default=20, ge=1, le=200)


class IncidentDeclareRequest(_Request):
    kind: Literal["incident_declare"] = "incident_declare"
    severity: Severity
    title: str


class IncidentUpdateRequest(_Request):
    kind: Literal["incident_update"] = "incident_update"
    text: str


class IncidentStatusRequest(_Request):
    kind: Literal["incident_status"] = "incident_status"
    state: IncidentState


class IncidentCommanderRequest(_Request):
    kind: Literal["incident_commander"] = "incident_commander"
    user_id: str


class IncidentResolveRequest(_Request):
    kind: Literal["incident_resolve"] = "incident_resolve"
    summary: str | None = None


Request = (
    HelpRequest
    | DeployRequest
    | RollbackRequest
    | ScaleRequest
    | DbRestoreRequest
    | RunRequest
    | LogsRequest
    | DrStatusRequest
    | DrActivateRequest
    | StatusRequest
    | LockRequest
    | UnlockRequest
    | ApprovalsRequest
    | AuditRequest
    | IncidentDeclareRequest
    | IncidentUpdateRequest
    | IncidentStatusRequest
    | IncidentCommanderRequest
    | IncidentResolveRequest
)
