"""Which service and environment an alarm watches: the target of its Roll back button. Pure.

The service: the one whose `alarms` list it (config), else the one whose `ecs_service` is the
alarm's `ServiceName` dimension. The environment, in order:

1. the environment whose `alarms` list it (`[environments.Y] alarms = [...]`);
2. the environment whose `cluster` is the alarm's `ClusterName` dimension;
3. the only configured environment in the alarm's region (an alarm in us-east-1 cannot watch
   an environment in eu-west-1).

Otherwise the alarm is shared by several environments (production and staging both in
us-east-1) and there is no target: guessing would offer to roll back the wrong environment.
When two sources disagree (config says production, ClusterName says dhanam-staging; or a
ClusterName that is no configured environment's, such as the DR cluster) there is no target
either: in doubt, no button.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import Config
from integrations.cloudwatch_alarms import AlarmNotification

CLUSTER_DIMENSION = "ClusterName"
SERVICE_DIMENSION = "ServiceName"


@dataclass(frozen=True)
class AlarmTarget:
    """What an alarm's Roll back button would act on; `basis` says how it was told, or why not."""

    service: str | None
    env: str | None
    basis: str

    @property
    def resolved(self) -> bool:
        return self.service is not None and self.env is not None


def _one(names: set[str]) -> str | None:
    return next(iter(names)) if len(names) == 1 else None


def _service(config: Config, alarm: AlarmNotification) -> tuple[str | None, str]:
    listed = config.service_for_alarm(alarm.name)
    values = alarm.dimension_values(SERVICE_DIMENSION)
    if not values:
        return listed, "listed by the service" if listed else "no service lists the alarm"
    matched = {n for n, s in config.services.items() if s.ecs_service in values}
    by_dimension = _one(matched) if len(values) == 1 else None
    if listed is not None and by_dimension != listed:
        return None, (
            f"listed by service {listed} but its ServiceName dimension is "
            f"{', '.join(sorted(values))}"
        )
    if by_dimension is None:
        return None, f"ServiceName {', '.join(sorted(values))} is no single configured service"
    return by_dimension, "listed by the service" if listed else "ServiceName dimension"


def _by_cluster(
    config: Config, listed: str | None, clusters: frozenset[str], region: str | None
) -> tuple[str | None, str]:
    # A cluster is named within its region: a DR cluster of the same name in another region
    # is not the production one.
    matched = {
        n
        for n, e in config.environments.items()
        if e.cluster in clusters and (region is None or e.region == region)
    }
    by_dimension = _one(matched) if len(clusters) == 1 else None
    if by_dimension is None:
        return (
            None,
            f"ClusterName {', '.join(sorted(clusters))} is no single configured environment",
        )
    if listed is not None and listed != by_dimension:
        cluster = config.environments[by_dimension].cluster
        return None, f"listed by environment {listed} but its ClusterName is {cluster}"
    return by_dimension, "listed by the environment" if listed else "ClusterName dimension"


def _environment(config: Config, alarm: AlarmNotification) -> tuple[str | None, str]:
    return environment_of(
        config, alarm.name, alarm.dimension_values(CLUSTER_DIMENSION), alarm.region
    )


def environment_of(
    config: Config, name: str, clusters: frozenset[str], region: str | None
) -> tuple[str | None, str]:
    """The environment an alarm watches (the rules in this module's doc), and how it was
    told; None when it cannot be told. Also what `/dhanam status` counts an alarm for."""
    listed = config.environment_for_alarm(name)
    if clusters:
        return _by_cluster(config, listed, clusters, region)
    if listed is not None:
        return listed, "listed by the environment"
    envs = config.environments
    candidates = {n for n, e in envs.items() if region is None or e.region == region}
    only = _one(candidates)
    if only is not None:
        return only, "the only environment in the alarm's region"
    if not candidates:
        return None, f"no environment is in the alarm's region ({region})"
    return None, f"ambiguous: shared by environments {', '.join(sorted(candidates))}"


def alarm_target(config: Config, alarm: AlarmNotification) -> AlarmTarget:
    """Resolve the alarm's service and environment from config and its dimensions."""
    service, why = _service(config, alarm)
    if service is None:
        return AlarmTarget(service=None, env=None, basis=why)
    env, basis = _environment(config, alarm)
    return AlarmTarget(service=service, env=env, basis=basis)
