"""What the running bot holds: the process-level resources, built once by bot/wiring.py and
kept as `app[DEPS]` for the webhooks, /health and the tests, and each feature's own narrow deps
object (commands/<feature>/deps.py), which is all that feature's handlers are given."""

from __future__ import annotations

from dataclasses import dataclass

from approvals.flow import ApprovalFlow
from approvals.locks import Locks
from approvals.rollout import RolloutFollower
from approvals.store import ApprovalStore
from commands.alarms.deps import AlarmsDeps
from commands.alarms.service import AlarmService
from commands.alarms.store import AlarmStore
from commands.incidents.deps import IncidentsDeps
from commands.incidents.pagerduty import PagerDutySync
from commands.incidents.service import IncidentService
from commands.operations.deps import OperationsDeps
from commands.parser import Parser
from commands.status.collector import StatusCollector
from commands.status.deps import StatusDeps
from core.clock import Clock
from core.config import Config
from core.inflight import InFlight
from core.metrics import Metrics
from integrations.redis_client import RedisClient
from integrations.slack.outbox import Outbox
from integrations.sns import SnsVerifier


@dataclass(frozen=True)
class Features:
    """Each feature's deps, handed to its commands and buttons when they are registered."""

    operations: OperationsDeps
    status: StatusDeps
    alarms: AlarmsDeps
    incidents: IncidentsDeps


@dataclass(frozen=True)
class Components:
    config: Config
    parser: Parser
    redis: RedisClient
    clock: Clock
    metrics: Metrics
    store: ApprovalStore
    locks: Locks
    flow: ApprovalFlow
    inflight: InFlight
    follower: RolloutFollower
    incidents: IncidentService
    pagerduty: PagerDutySync
    status: StatusCollector
    sns: SnsVerifier
    alarm_store: AlarmStore
    outbox: Outbox
    alarms: AlarmService
    features: Features
