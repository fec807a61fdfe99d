"""The incidents feature's deps with the sev1 checklist's checks, built once at start-up
(bot/wiring.py)."""

from __future__ import annotations

from commands.incidents.checklist import Checklist
from commands.incidents.deps import IncidentsDeps
from commands.incidents.service import IncidentService
from commands.outage.checks import OutageChecks
from commands.outage.deps import OutageSources, Wrap
from commands.router import CommandDispatch
from commands.status.collector import StatusCollector
from core.clock import Clock
from core.config import Config, resolver_address
from integrations.aws.cloudfront import CloudFrontReader
from integrations.aws.cloudwatch_logs import LogReader
from integrations.aws.dr import DrReader
from integrations.aws.gateway import AwsGateway
from integrations.aws.health import HealthReader
from integrations.aws.metrics import CloudWatchReader
from integrations.aws.rds import RdsGateway
from integrations.dns import DnsResolver
from integrations.dr_snapshot import ProductionSnapshots


def incidents_deps(
    config: Config,
    *,
    clock: Clock,
    wrap: Wrap | None,
    incidents: IncidentService,
    aws: AwsGateway,
    status: StatusCollector,
    snapshots: ProductionSnapshots | None = None,
) -> IncidentsDeps:
    """The incidents feature's deps, with the sev1 checklist's checks (commands/outage), each
    reading through its own reader, and the way its Activate DR button runs `dr activate`."""
    cloudwatch = CloudWatchReader(aws.clients)
    outage = config.outage
    sources = OutageSources(
        config=config,
        clock=clock,
        health=HealthReader(aws.clients),
        dns=DnsResolver(
            resolver_address(outage.resolver) if outage and outage.resolver else None
        ),
        cloudfront=CloudFrontReader(aws.clients, cloudwatch),
        collector=status,
        aws=aws,
        rds=RdsGateway(aws.clients),
        logs=LogReader(aws.clients),
        dr=DrReader(
            config=config, clients=aws.clients, aws=aws, cloudwatch=cloudwatch,
            clock=clock, snapshots=snapshots,  # production's services, kept for dr activate
        ),
        wrap=wrap,
    )  # fmt: skip
    return IncidentsDeps(
        incidents=incidents,
        checklist=Checklist(incidents, OutageChecks(sources)),
        commands=CommandDispatch(),
    )
