"""What the operations feature's handlers use: the risky commands, lock/unlock, approvals,
audit, and the approval card's and the alarm's Roll back buttons."""

from __future__ import annotations

from dataclasses import dataclass

from approvals.flow import ApprovalFlow, Members
from approvals.locks import Locks
from approvals.store import ApprovalStore
from core.clock import Clock
from core.config import Config


@dataclass(frozen=True)
class OperationsDeps:
    config: Config
    clock: Clock
    flow: ApprovalFlow  # submit, approve, deny, cancel
    store: ApprovalStore  # pending requests and the audit log
    locks: Locks  # lock / unlock
    members: Members  # who is in an approvers' group
