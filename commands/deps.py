"""The one narrow object handlers get their collaborators from (through Bolt's context)."""

from __future__ import annotations

from dataclasses import dataclass

from approvals.flow import ApprovalFlow
from approvals.locks import Locks
from approvals.rollout import RolloutFollower
from approvals.store import ApprovalStore
from commands.alarms.service import AlarmService
from commands.alarms.store import AlarmStore
from commands.incidents.pagerduty import PagerDutySync
from commands.incidents.service import IncidentService
from commands.parser import Parser
from commands.status.collector import StatusCollector
from core.clock import Clock
from core.config import Config
from core.inflight import InFlight
from core.metrics import Metrics
from integrations.redis_client import RedisClient
from integrations.slack.outbox import Outbox
from integrations.sns import SnsVerifier


@dataclass(frozen=True)
class Deps:
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


DEPS_KEY = "deps"
