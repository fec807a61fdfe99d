"""What the checklist's checks read (`OutageSources`).

The primary environment is the one named "production", else the first configured (the one DR
mirrors: integrations.aws.dr.production_env); every check looks at it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from commands.outage.models import Check
from commands.status.collector import StatusCollector
from core.clock import Clock
from core.config import Config, EnvironmentConfig, OutageConfig
from integrations.aws.cloudfront import CloudFrontReader
from integrations.aws.cloudwatch_logs import AwsLogs, LogReader
from integrations.aws.dr import DrReader, production_env
from integrations.aws.gateway import AwsGateway
from integrations.aws.health import HealthReader
from integrations.aws.rds import RdsGateway
from integrations.dns import DnsResolver

# Tests and the benchmark may wrap the checks (slow one down, replace one): checks -> checks.
Wrap = Callable[[dict[str, Check]], dict[str, Check]]


@dataclass(frozen=True)
class OutageSources:
    config: Config
    clock: Clock
    health: HealthReader
    dns: DnsResolver
    cloudfront: CloudFrontReader
    collector: StatusCollector
    aws: AwsGateway
    rds: RdsGateway
    logs: LogReader
    dr: DrReader
    wrap: Wrap | None = field(default=None)
    # The logs step's memory between runs (service_checks.logs): each task definition ARN's
    # awslogs place (a revision never changes) and the ARN each service ran last.
    log_places: dict[str, AwsLogs | None] = field(default_factory=dict)
    log_arns: dict[str, str] = field(default_factory=dict)

    @property
    def outage(self) -> OutageConfig:
        return self.config.outage or OutageConfig()

    @property
    def env_name(self) -> str:
        return production_env(self.config)

    @property
    def env(self) -> EnvironmentConfig:
        return self.config.environments[self.env_name]

    @property
    def limit(self) -> float:
        """Seconds each check may take."""
        return self.outage.check_timeout_seconds
