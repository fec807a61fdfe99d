"""The TOML config model (docs/configuration.md), read once at start-up. Errors name their field
path.

Long: the whole TOML schema, one small model per section, with the checks across sections and
the error formatting; one file is the config's reference.
"""

from __future__ import annotations

import ipaddress
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from core.errors import ConfigError
from core.text import duration, plural

_CHANNEL_PATTERN = r"^[CG][A-Z0-9]{2,}$"
_PRINCIPAL_PATTERN = r"^(\*|[UWS][A-Z0-9]{2,})$"
_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,31}$"
_TASK_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"  # a task name: migrate, migrate-status

ChannelId = Annotated[str, Field(pattern=_CHANNEL_PATTERN)]
Principal = Annotated[str, Field(pattern=_PRINCIPAL_PATTERN)]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("needs a timezone, e.g. 2026-12-24T00:00:00Z")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class _Model(BaseModel):
    # Unknown keys are refused: a typo such as `approvals_requried` must not silently
    # fall back to a default in a tool that changes production.
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlackConfig(_Model):
    command: str = Field(default="/dhanam", pattern=r"^/[a-z0-9_-]{1,31}$")
    alerts_channel: ChannelId
    incidents_channel: ChannelId
    oncall_channel: ChannelId


class ApprovalsConfig(_Model):
    ttl_seconds: int = Field(default=900, ge=60, le=86_400)


class FreezeWindow(_Model):
    start: AwareDatetime
    end: AwareDatetime
    reason: str = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def covers(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


class EnvironmentConfig(_Model):
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    cluster: str = Field(min_length=1, max_length=255)
    approvers: list[Principal] = Field(default_factory=list)
    approvals_required: int = Field(default=1, ge=0, le=5)
    requesters: list[Principal] = Field(default_factory=lambda: ["*"])
    db_instance: str | None = None
    api_base_url: AnyHttpUrl | None = None
    freeze: list[FreezeWindow] = Field(default_factory=list)
    # CloudWatch alarms that watch this environment (names also listed under a service's
    # `alarms`, which routes them). The alarm's Roll back button then targets this environment;
    # an alarm may be listed by one environment only. Unlisted alarms are placed by their
    # ClusterName dimension, else by being the only environment in their region, else get no
    # Roll back button (commands/alarms/environment.py).
    alarms: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(default_factory=list)

    @field_validator("approvers")
    @classmethod
    def _no_wildcard_approver(cls, value: list[str]) -> list[str]:
        if "*" in value:
            raise ValueError('"*" is not allowed: name the approvers (user or user-group IDs)')
        return value

    @model_validator(mode="after")
    def _satisfiable(self) -> Self:
        users = [p for p in self.approvers if not p.startswith("S")]
        groups = [p for p in self.approvers if p.startswith("S")]
        if self.approvals_required > 0 and not self.approvers:
            raise ValueError(
                f"approvals_required is {self.approvals_required} but no approvers are listed"
            )
        if not groups and self.approvals_required > len(users):
            raise ValueError(
                f"approvals_required is {self.approvals_required} but only "
                f"{len(users)} approvers are listed"
            )
        return self

    def active_freeze(self, moment: datetime) -> FreezeWindow | None:
        return next((w for w in self.freeze if w.covers(moment)), None)


class TaskConfig(_Model):
    """A named one-off task of a service (`/dhanam run SERVICE ENV TASK`): its command runs as
    an ECS task with the service's current task definition. Never free text from chat."""

    command: list[Annotated[str, Field(min_length=1, max_length=1024)]] = Field(
        min_length=1, max_length=64
    )
    # As the environment requires (the default), or 0 for a read-only task.
    approvals: Literal["environment", 0] = "environment"
    timeout_seconds: int = Field(default=900, ge=10, le=24 * 3600)


class ServiceConfig(_Model):
    ecs_service: str = Field(min_length=1, max_length=255)
    container: str = Field(min_length=1, max_length=255)
    alarms: list[str] = Field(default_factory=list)
    channel: ChannelId | None = None
    # Named one-off tasks (`[services.api.tasks.migrate]`), and the one a deploy runs with the
    # new image before update-service (`before_deploy = "migrate"`).
    tasks: dict[Annotated[str, Field(pattern=_TASK_PATTERN)], TaskConfig] = Field(
        default_factory=dict
    )
    before_deploy: str | None = None

    @model_validator(mode="after")
    def _before_deploy_is_a_task(self) -> Self:
        if self.before_deploy is not None and self.before_deploy not in self.tasks:
            known = ", ".join(sorted(self.tasks)) or "none"
            raise ValueError(
                f'before_deploy names "{self.before_deploy}", which is not one of its tasks '
                f"(known: {known})"
            )
        return self


class RolloutsConfig(_Model):
    """Following a deploy after update-service, and watching its alarms afterwards."""

    poll_seconds: float = Field(default=10.0, ge=0.2, le=300)
    timeout_seconds: int = Field(default=1800, ge=10, le=6 * 3600)
    bake_seconds: int = Field(default=900, ge=0, le=24 * 3600)
    # How long a dead follower's rollout waits before another replica takes it over.
    lease_seconds: float = Field(default=30.0, ge=1.0, le=600)


class DrConfig(_Model):
    """Disaster recovery (`/dhanam dr status|activate`): the DR region, its ECS cluster (the
    same service names), the database to promote — a cross-region read replica
    (`db_instance`) or replicated automated backups (`automated_backup_arn`) — the targets the
    readiness is judged against, and optionally the failover DNS record."""

    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    cluster: str = Field(min_length=1, max_length=255)
    db_instance: str | None = Field(default=None, min_length=1, max_length=63)
    automated_backup_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:rds:.+$")
    rpo_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    rto_seconds: int = Field(default=14400, ge=60, le=7 * 24 * 3600)
    route53_zone_id: str | None = Field(default=None, min_length=1, max_length=64)
    record_name: str | None = Field(default=None, min_length=1, max_length=255)
    target: str | None = Field(default=None, min_length=1, max_length=255)  # what it points to

    @model_validator(mode="after")
    def _one_database_and_a_whole_record(self) -> Self:
        if (self.db_instance is None) == (self.automated_backup_arn is None):
            raise ValueError("give exactly one of db_instance (a replica) or automated_backup_arn")
        record = (self.route53_zone_id, self.record_name, self.target)
        if any(v is not None for v in record) and not all(v is not None for v in record):
            raise ValueError("the failover record needs route53_zone_id, record_name and target")
        return self


_HOSTNAME = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
_RESOLVER = r"^[0-9a-fA-F.:\[\]]+$"  # an IP address, optionally with a port: 10.0.0.2:53


class OutageConfig(_Model):
    """The sev1 checklist's own checks (README "Incidents"): the hostnames the DNS step
    resolves, the resolver it asks (default: the system's), the CloudFront distribution
    (default: the one with a hostname among its aliases), each check's time limit and the
    thresholds a check fails at."""

    # the DNS step resolves each; the CloudFront step finds its distribution by them
    hostnames: list[Annotated[str, Field(pattern=_HOSTNAME, max_length=253)]] = Field(
        default_factory=list, max_length=20
    )
    resolver: Annotated[str, Field(pattern=_RESOLVER, max_length=64)] | None = None  # IP[:port]
    cloudfront_distribution_id: str | None = Field(default=None, pattern=r"^[A-Z0-9]{1,32}$")
    check_timeout_seconds: float = Field(default=5.0, gt=0, le=60)  # each check; then unknown
    cloudfront_5xx_percent: float = Field(default=5.0, ge=0, le=100)  # the newest point, %
    log_error_threshold: int = Field(default=10, ge=0, le=100_000)  # ERROR lines per service

    @field_validator("resolver")
    @classmethod
    def _an_address(cls, value: str | None) -> str | None:
        if value is not None:
            resolver_address(value)
        return value


def resolver_address(value: str) -> tuple[str, int]:
    """`10.0.0.2`, `10.0.0.2:5353`, `::1` or `[::1]:5353` as (address, port); ValueError else."""
    host, port = value, 53
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif value.count(":") == 1:
        host, _, number = value.partition(":")
        port = int(number)
    ipaddress.ip_address(host)
    if not 0 < port < 65_536:
        raise ValueError(f"port {port} is out of range")
    return host, port


class ScaleConfig(_Model):
    max_tasks: int = Field(default=50, ge=1, le=5000)  # refuse --max/--desired above this


class SnsConfig(_Model):
    topics: list[Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:.+$")]] = (
        Field(default_factory=list)
    )


class PagerDutyConfig(_Model):
    services: dict[str, ChannelId] = Field(default_factory=dict)
    # Who may press Acknowledge on an alarm's PagerDuty incident: user IDs and/or user-group IDs.
    # Unset: every approver of the environment named "production" (of every environment when
    # none is named so); see Config.pagerduty_responders.
    responders: list[Principal] | None = None

    @field_validator("responders")
    @classmethod
    def _named_responders(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if "*" in value:
            raise ValueError('"*" is not allowed: name the responders (user or user-group IDs)')
        if not value:
            raise ValueError(
                "list at least one responder, or leave `responders` out to default to the "
                "production approvers"
            )
        return value


class StatusConfig(_Model):
    """`/dhanam status` and the App Home: how long each source may take, what metrics to show."""

    http_timeout_seconds: float = Field(default=2.0, gt=0, le=30)  # each API health endpoint
    source_timeout_seconds: float = Field(default=3.0, gt=0, le=30)  # each AWS or Redis source
    metrics_minutes: int = Field(default=60, ge=5, le=24 * 60)  # the sparklines' time span
    metrics_period_seconds: Literal[60, 300] = 300  # one sparkline point per period


class IncidentsConfig(_Model):
    """Incident channels: who is invited, when the commander is nudged, the sev1 checklist."""

    oncall_group: Annotated[str, Field(pattern=r"^S[A-Z0-9]{2,}$")] | None = None
    update_reminder_seconds: int = Field(default=1800, ge=60, le=24 * 3600)
    sev1_checklist: bool = True

    @property
    def update_reminder(self) -> timedelta:
        return timedelta(seconds=self.update_reminder_seconds)


class AlarmsConfig(_Model):
    """CloudWatch alarms in Slack: reminders, write pacing, storms and threads."""

    reminder_seconds: int = Field(default=1800, ge=60, le=7 * 24 * 3600)  # still ALARM: remind
    writes_per_second: float = Field(default=1.0, gt=0, le=5)  # per channel (Slack: ~1/s)
    storm_threshold: int = Field(default=5, ge=1, le=100)  # more alarms changing: one digest
    storm_window_seconds: int = Field(default=10, ge=1, le=600)
    new_thread_after_seconds: int = Field(default=3600, ge=0, le=7 * 24 * 3600)


class Config(_Model):
    slack: SlackConfig
    approvals: ApprovalsConfig = Field(default_factory=ApprovalsConfig)
    environments: dict[Annotated[str, Field(pattern=_NAME_PATTERN)], EnvironmentConfig] = Field(
        min_length=1
    )
    services: dict[Annotated[str, Field(pattern=_NAME_PATTERN)], ServiceConfig] = Field(
        min_length=1
    )
    sns: SnsConfig = Field(default_factory=SnsConfig)
    pagerduty: PagerDutyConfig = Field(default_factory=PagerDutyConfig)
    rollouts: RolloutsConfig = Field(default_factory=RolloutsConfig)
    scale: ScaleConfig = Field(default_factory=ScaleConfig)
    status: StatusConfig = Field(default_factory=StatusConfig)
    incidents: IncidentsConfig = Field(default_factory=IncidentsConfig)
    alarms: AlarmsConfig = Field(default_factory=AlarmsConfig)
    dr: DrConfig | None = None
    outage: OutageConfig | None = None  # absent: the sev1 checklist is ticked by hand only

    @property
    def service_names(self) -> list[str]:
        return sorted(self.services)

    @property
    def environment_names(self) -> list[str]:
        return sorted(self.environments)

    @model_validator(mode="after")
    def _alarms_in_one_environment(self) -> Self:
        owners: dict[str, str] = {}
        for name, env in sorted(self.environments.items()):
            for alarm in env.alarms:
                if alarm in owners and owners[alarm] != name:
                    raise ValueError(
                        f"alarm {alarm!r} is listed by environments {owners[alarm]} and {name}: "
                        "an alarm watches one environment (leave it out of both when shared)"
                    )
                owners[alarm] = name
        return self

    @model_validator(mode="after")
    def _dr_is_not_an_environment(self) -> Self:
        """`[dr]` must name somewhere else than what it stands in for: an activation promotes
        its database and scales its cluster, which must never be production's own."""
        dr = self.dr
        if dr is None:
            return self
        for name, env in sorted(self.environments.items()):
            if env.region == dr.region and env.cluster == dr.cluster:
                raise ValueError(
                    f"[dr] names cluster {dr.cluster!r} in {dr.region}, which is environment "
                    f"{name}'s: the DR cluster must be another one"
                )
            same_db = dr.db_instance is not None and env.db_instance == dr.db_instance
            if same_db and env.region == dr.region:
                raise ValueError(
                    f"[dr] db_instance {dr.db_instance!r} is environment {name}'s database "
                    "in the same region: name its replica in the DR region"
                )
        return self

    def service_for_alarm(self, alarm_name: str) -> str | None:
        return next((n for n, s in self.services.items() if alarm_name in s.alarms), None)

    def environment_for_alarm(self, alarm_name: str) -> str | None:
        """The environment that lists the alarm in its `alarms`, if any."""
        return next((n for n, e in self.environments.items() if alarm_name in e.alarms), None)

    @property
    def pagerduty_responders(self) -> list[str]:
        """Who may acknowledge PagerDuty incidents from Slack: `[pagerduty] responders`, else
        the approvers of the environment named "production", else of every environment."""
        if self.pagerduty.responders is not None:
            return list(self.pagerduty.responders)
        production = self.environments.get("production")
        envs = [production] if production is not None else list(self.environments.values())
        return list(dict.fromkeys(p for env in envs for p in env.approvers))

    def summary(self) -> list[str]:
        lines = [f"slash command {self.slack.command}"]
        for name, env in sorted(self.environments.items()):
            approvers = ", ".join(env.approvers) or "none"
            approval = (
                f"{plural(env.approvals_required, 'approval')} from [{approvers}]"
                if env.approvals_required
                else "runs without approval"
            )
            lines.append(
                f"environment {name}: {env.region}/{env.cluster}, {approval}, "
                f"{plural(len(env.freeze), 'freeze window')}, {plural(len(env.alarms), 'alarm')}"
            )
        for name, svc in sorted(self.services.items()):
            lines.append(
                f"service {name}: ECS {svc.ecs_service} (container {svc.container}), "
                f"{plural(len(svc.alarms), 'alarm')}, "
                f"channel {svc.channel or self.slack.alerts_channel}"
            )
            if svc.tasks:
                before = f", before_deploy {svc.before_deploy}" if svc.before_deploy else ""
                lines.append(f"service {name}: tasks {', '.join(sorted(svc.tasks))}{before}")
        if self.dr is not None:
            source = self.dr.db_instance or self.dr.automated_backup_arn
            lines.append(
                f"disaster recovery: {self.dr.region}/{self.dr.cluster}, database {source}, "
                f"RPO {duration(timedelta(seconds=self.dr.rpo_seconds))}, "
                f"RTO {duration(timedelta(seconds=self.dr.rto_seconds))}"
            )
        lines.append(f"{plural(len(self.sns.topics), 'SNS topic')} allowed")
        lines.append(plural(len(self.pagerduty.services), "PagerDuty service mapping"))
        responders = ", ".join(self.pagerduty_responders) or "nobody"
        lines.append(f"PagerDuty responders (may acknowledge): {responders}")
        return lines


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


_PATTERN_HINTS = {
    _CHANNEL_PATTERN: "must be a Slack channel ID such as C0ALERTS",
    _PRINCIPAL_PATTERN: 'must be a Slack user ID (U…/W…), user-group ID (S…) or "*"',
    _NAME_PATTERN: "must be a short lowercase name (a-z, 0-9, -)",
}


def format_validation_error(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors(include_url=False):
        message = item["msg"]
        pattern = str((item.get("ctx") or {}).get("pattern", ""))
        if item["type"] == "string_pattern_mismatch" and pattern in _PATTERN_HINTS:
            message = f"{_PATTERN_HINTS[pattern]}, not {item['input']!r}"
        elif item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "missing":
            message = "required key is missing"
        message = message.removeprefix("Value error, ")
        lines.append(f"{_location(tuple(item['loc']))}: {message}")
    return lines


def parse_config(data: dict[str, object]) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None


def load_config(path: Path, *, origin: str = "", hint: str = "") -> Config:
    """Read and validate the TOML file; raise ConfigError with one line per problem.

    ``origin`` says where ``path`` came from (an argument, DHANAM_CONFIG, the default) and
    ``hint`` what to do when there is no file at all; both only shape the error lines. Errors
    about the file itself (not found, unreadable, not TOML) start with "config file".
    """
    source = f" ({origin})" if origin else ""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        found = f"config file not found: {path}{source}"
        raise ConfigError([f"{found} — {hint}" if hint else found]) from None
    except OSError as exc:
        raise ConfigError([f"config file {path}{source} cannot be read: {exc.strerror}"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError([f"config file {path}{source} is not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"config file {path}{source}: invalid TOML: {exc}"]) from None
    return parse_config(data)
