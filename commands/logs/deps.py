"""What `/dhanam logs` uses."""

from __future__ import annotations

from dataclasses import dataclass

from core.clock import Clock
from core.config import Config
from integrations.aws.cloudwatch_logs import LogReader
from integrations.aws.gateway import AwsGateway

# The whole command (service, task definition, log pages) gets this many times the status
# budget of one source ([status] source_timeout_seconds): two lookups, then the pages.
BUDGET_SOURCES = 2


@dataclass(frozen=True)
class LogsDeps:
    config: Config
    clock: Clock
    aws: AwsGateway
    reader: LogReader

    @property
    def budget(self) -> float:
        """Seconds the command may spend reading AWS before it answers anyway."""
        return self.config.status.source_timeout_seconds * BUDGET_SOURCES
