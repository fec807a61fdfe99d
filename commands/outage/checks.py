"""The seven checks of the sev1 checklist, by step (`OutageChecks.checks`)."""

from __future__ import annotations

from collections.abc import Mapping

from commands.outage import aws_checks, service_checks
from commands.outage.deps import OutageSources
from commands.outage.models import Check
from core.clock import Clock


class OutageChecks:
    def __init__(self, sources: OutageSources) -> None:
        self.sources = sources

    @property
    def enabled(self) -> bool:
        """Checks run when the config has an `[outage]` table."""
        return self.sources.config.outage is not None

    @property
    def limit(self) -> float:
        return self.sources.limit

    @property
    def clock(self) -> Clock:
        return self.sources.clock

    def checks(self) -> Mapping[str, Check]:
        src = self.sources
        found: dict[str, Check] = {
            "aws_health": lambda: aws_checks.health(src),
            "dns": lambda: service_checks.dns(src),
            "cloudfront": lambda: aws_checks.cloudfront(src),
            "ecs": lambda: service_checks.ecs(src),
            "rds": lambda: aws_checks.rds(src),
            "cloudwatch": lambda: service_checks.logs(src),
            "dr_region": lambda: aws_checks.dr(src),
        }
        return src.wrap(found) if src.wrap is not None else found
