"""Builds the collaborators once, at start-up: store, locks, flow, Slack notifier, AWS.

Long: one function builds every collaborator in the order they depend on one another and adds
each to the process in that order (shutdown runs it backwards); split, that order would be
spread over modules that must then agree on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta

from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient

from approvals.cards import Cards
from approvals.flow import LEASE, ActionRegistry, ApprovalFlow
from approvals.locks import Locks
from approvals.models import Action
from approvals.rollout import RolloutFollower, RolloutSettings
from approvals.store import ApprovalStore
from bot.checklist import incidents_deps
from bot.components import Components, Features
from bot.process import Process
from commands.alarms.deps import AlarmsDeps
from commands.alarms.feature import alarms_feature
from commands.alarms.service import AlarmService
from commands.alarms.store import AlarmSettings, AlarmStore
from commands.dr.deps import DrDeps
from commands.dr.feature import dr_feature
from commands.incidents.channel import IncidentSlack
from commands.incidents.feature import incidents_feature
from commands.incidents.pager import IncidentPager, IncidentTimings
from commands.incidents.pagerduty import PagerDutySync
from commands.incidents.service import IncidentService
from commands.incidents.store import IncidentStore
from commands.logs.deps import LogsDeps
from commands.logs.feature import logs_feature
from commands.operations import dr_incident, risky
from commands.operations.deps import OperationsDeps
from commands.operations.feature import operations_feature
from commands.operations.notifier import SlackNotifier, ThreadProgress
from commands.operations.rollout import EcsRolloutSource, FollowRollouts, SlackRolloutReporter
from commands.operations.runtime import ActionRuntime
from commands.operations.task_follow import FollowedSource, TaskSource
from commands.outage.deps import Wrap
from commands.parser import Parser
from commands.status.collector import StatusCollector
from commands.status.deps import StatusDeps
from commands.status.feature import status_feature
from core.clock import Clock, SystemClock
from core.config import Config
from core.inflight import InFlight
from core.metrics import Metrics
from core.settings import Settings
from integrations.aws.clients import AwsClients
from integrations.aws.cloudwatch_logs import LogReader
from integrations.aws.dr import DrReader
from integrations.aws.ecs_tasks import EcsTasks
from integrations.aws.gateway import AwsGateway
from integrations.aws.metrics import CloudWatchReader
from integrations.deploy_history import DeployHistory
from integrations.dr_snapshot import ProductionSnapshots
from integrations.pagerduty import PagerDuty
from integrations.redis_client import RedisClient
from integrations.slack.outbox import ItemKind, Outbox
from integrations.slack.usergroups import GroupMembers
from integrations.sns import Fetch, SnsVerifier, https_get


@dataclass
class Overrides:
    """What tests and the sandbox may replace; production uses the defaults."""

    clock: Clock = field(default_factory=SystemClock)
    redis: RedisClient | None = None
    lease: timedelta = LEASE
    extra_actions: list[type[Action]] = field(default_factory=list)
    sweeper: bool = True  # the background loops: request sweeper and rollout takeover
    rollouts: RolloutSettings | None = None  # None: from the config's [rollouts]
    incidents: IncidentTimings | None = None  # None: production timings
    alarms: AlarmSettings | None = None  # None: from the config's [alarms]
    sns_fetch: Fetch | None = None  # HTTPS GET for SNS certificates and SubscribeURLs
    outage_checks: Wrap | None = None  # wraps the sev1 checklist's checks (slow one down…)


def build_components(
    settings: Settings,
    config: Config,
    overrides: Overrides,
    *,
    redis: RedisClient,
    client: AsyncWebClient,
    metrics: Metrics,
    process: Process,
) -> Components:
    """Build every collaborator once, and add to ``process`` what must start or stop (in the
    order built: shutdown runs it backwards)."""
    clock = overrides.clock
    store = ApprovalStore(redis, clock)
    locks = Locks(redis, clock)
    registry = ActionRegistry()
    for action in [*risky.ACTIONS, *overrides.extra_actions]:
        registry.add(action)
    aws = AwsGateway(AwsClients(settings.aws_endpoint_url, settings.aws_region))
    regions = sorted({env.region for env in config.environments.values()} | _dr_region(config))

    async def aws_start() -> None:  # thread pools on, clients built off the event loop
        await aws.clients.start(regions)

    async def aws_stop() -> None:  # after everything that calls AWS has stopped
        aws.clients.close()

    process.add("aws", start=aws_start, stop=aws_stop)
    rollouts = overrides.rollouts or RolloutSettings(
        poll=timedelta(seconds=config.rollouts.poll_seconds),
        timeout=timedelta(seconds=config.rollouts.timeout_seconds),
        bake=timedelta(seconds=config.rollouts.bake_seconds),
        lease=timedelta(seconds=config.rollouts.lease_seconds),
    )
    runtime = ActionRuntime(
        config=config,
        clock=clock,
        aws=aws,
        history=DeployHistory(redis, clock),
        progress=ThreadProgress(client, store),
        leases=store,
        task_poll=rollouts.poll.total_seconds(),  # a release step is watched as rollouts are
        dr_snapshots=ProductionSnapshots(redis),  # what production ran, for dr activate
    )
    members = GroupMembers(client, clock)
    cards = Cards(store, SlackNotifier(client, config, clock), clock)
    follower = RolloutFollower(
        redis=redis,
        store=store,
        source=FollowedSource(
            EcsRolloutSource(aws), TaskSource(EcsTasks(aws.clients), store), clock.now
        ),
        reporter=SlackRolloutReporter(client),
        annotate=cards.annotate,
        clock=clock,
        settings=rollouts,
    )
    pagerduty = _pagerduty(settings, process)
    incidents = _incidents(
        config, overrides, redis=redis, client=client, history=runtime.history,
        members=members, pagerduty=pagerduty,
    )  # fmt: skip
    runtime = replace(runtime, announce=dr_incident.IncidentAnnouncer(incidents))  # dr activate
    alarm_settings = overrides.alarms or alarm_settings_from(config)
    alarm_store = AlarmStore(redis, clock)
    outbox = Outbox(
        redis=redis,
        client=client,
        writes_per_second=alarm_settings.writes_per_second,
    )
    alarms = AlarmService(
        config=config,
        store=alarm_store,
        outbox=outbox,
        history=DeployHistory(redis, clock),
        leases=store,
        clock=clock,
        settings=alarm_settings,
        bake=rollouts.bake,
    )
    pagerduty_sync = PagerDutySync(
        incidents, outbox, pagerduty, on_standalone=[alarms.pagerduty_hook]
    )
    outbox.register(alarms.process, *AlarmService.KINDS)
    outbox.register(pagerduty_sync.publish, ItemKind.PAGERDUTY)
    process.add("outbox", stop=outbox.stop)  # the write in flight finishes or stays queued
    flow = ApprovalFlow(
        config=config,
        store=store,
        locks=locks,
        notifier=cards.notifier,
        members=members,
        registry=registry,
        runtime=runtime,
        clock=clock,
        lease=overrides.lease,
        # After a followed Action (a deploy's or rollback's rollout) succeeds: follow it, and
        # tell PagerDuty and the open incidents. Which actions those are, the Actions say.
        follow=[FollowRollouts(follower, config, clock), pagerduty_sync.deploy_changed],
        cards=cards,
    )
    status = StatusCollector(
        config=config,
        aws=aws,
        cloudwatch=CloudWatchReader(aws.clients),
        history=runtime.history,
        store=store,
        locks=locks,
        clock=clock,
    )
    features = Features(
        operations=OperationsDeps(
            config=config, clock=clock, flow=flow, store=store, locks=locks, members=members
        ),
        status=StatusDeps(config=config, clock=clock, collector=status),
        alarms=AlarmsDeps(config=config, members=members, pagerduty=pagerduty, alarms=alarms),
        incidents=incidents_deps(
            config,
            clock=clock,
            wrap=overrides.outage_checks,
            incidents=incidents,
            aws=aws,
            status=status,
            snapshots=runtime.dr_snapshots,
        ),
    )
    # Each feature whole, in one call: its commands, buttons and events for Slack, its jobs and
    # stops for the process. Added after what they use: shutdown stops them first.
    process.add_feature(alarms_feature(features.alarms))
    process.add_feature(incidents_feature(features.incidents, leases=store))
    process.add_feature(status_feature(features.status))
    process.add_feature(logs_feature(LogsDeps(config, clock, aws, LogReader(aws.clients))))
    dr = DrReader(
        config=config,
        clients=aws.clients,
        aws=aws,
        cloudwatch=CloudWatchReader(aws.clients),
        clock=clock,
        snapshots=runtime.dr_snapshots,
    )
    process.add_feature(dr_feature(DrDeps(config, dr)))
    process.add_feature(operations_feature(features.operations, flow=flow, follower=follower))
    inflight = InFlight()
    process.add("requests in flight", stop=inflight.idle)  # first to stop: no new work
    return Components(
        config=config,
        parser=Parser(config),
        redis=redis,
        clock=clock,
        metrics=metrics,
        store=store,
        locks=locks,
        flow=flow,
        inflight=inflight,
        follower=follower,
        incidents=incidents,
        pagerduty=pagerduty_sync,
        status=status,
        sns=SnsVerifier(
            topics=list(config.sns.topics),
            cert_dir=settings.sns_cert_cache_dir,
            fetch=overrides.sns_fetch or https_get,
        ),
        alarm_store=alarm_store,
        outbox=outbox,
        alarms=alarms,
        features=features,
    )


def _dr_region(config: Config) -> set[str]:
    return {config.dr.region} if config.dr is not None else set()


def _pagerduty(settings: Settings, process: Process) -> PagerDuty:
    def secret(value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value is not None else None

    pagerduty = PagerDuty(
        routing_key=secret(settings.pagerduty_routing_key),
        events_url=settings.pagerduty_events_url,
        api_token=secret(settings.pagerduty_api_token),
        api_url=settings.pagerduty_api_url,
        from_email=settings.pagerduty_from_email,
    )
    process.add("pagerduty", stop=pagerduty.close)
    return pagerduty


def _incidents(
    config: Config,
    overrides: Overrides,
    *,
    redis: RedisClient,
    client: AsyncWebClient,
    history: DeployHistory,
    members: GroupMembers,
    pagerduty: PagerDuty,
) -> IncidentService:
    store = IncidentStore(redis)
    pager = IncidentPager(
        store=store,
        pagerduty=pagerduty,
        clock=overrides.clock,
        timings=overrides.incidents or IncidentTimings(),
    )
    return IncidentService(
        store=store,
        slack=IncidentSlack(client, config.slack.command),
        pager=pager,
        config=config,
        clock=overrides.clock,
        history=history,
        members=members,
    )


def alarm_settings_from(config: Config) -> AlarmSettings:
    section = config.alarms
    return AlarmSettings(
        reminder=timedelta(seconds=section.reminder_seconds),
        writes_per_second=section.writes_per_second,
        storm_threshold=section.storm_threshold,
        storm_window=timedelta(seconds=section.storm_window_seconds),
        new_thread_after=timedelta(seconds=section.new_thread_after_seconds),
    )
