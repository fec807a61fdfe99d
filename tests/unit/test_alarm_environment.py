"""Which environment an alarm's Roll back button targets: config first, then the alarm's
dimensions, then the only environment in its region; otherwise none (issue 11, point 6)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from commands.alarms.environment import AlarmTarget, alarm_target
from core.config import Config, parse_config
from core.errors import ConfigError
from integrations.cloudwatch_alarms import (
    AlarmKind,
    AlarmNotification,
    AlarmState,
    Dimension,
    MetricQuery,
    parse_alarm,
)

ERRORS = "dhanam-api-high-error-rate"
CPU = "dhanam-api-cpu-high"


def config(
    *, prod_alarms: list[str] | None = None, staging_region: str = "us-east-1", **extra: Any
) -> Config:
    data: dict[str, Any] = {
        "slack": {
            "alerts_channel": "C0ALERTS",
            "incidents_channel": "C0INCIDENTS",
            "oncall_channel": "C0ONCALL",
        },
        "environments": {
            "production": {
                "region": "us-east-1",
                "cluster": "dhanam-production",
                "approvers": ["U0BOB", "U0CAROL", "S0SRE"],
                "alarms": prod_alarms or [],
            },
            "staging": {
                "region": staging_region,
                "cluster": "dhanam-staging",
                "approvals_required": 0,
            },
        },
        "services": {
            "api": {"ecs_service": "dhanam-api", "container": "api", "alarms": [ERRORS, CPU]},
            "web": {"ecs_service": "dhanam-web", "container": "web"},
        },
    }
    data.update(extra)
    return parse_config(data)


def alarm(
    name: str = CPU, region: str | None = "us-east-1", **dimensions: str
) -> AlarmNotification:
    return AlarmNotification(
        name=name,
        new_state=AlarmState.ALARM,
        changed_at=datetime(2026, 11, 26, 10, tzinfo=UTC),
        region=region,
        kind=AlarmKind.METRIC,
        dimensions=[Dimension(name=k, value=v) for k, v in dimensions.items()],
    )


def test_an_alarm_listed_by_an_environment_targets_it() -> None:
    target = alarm_target(config(prod_alarms=[ERRORS]), alarm(ERRORS))
    assert target == AlarmTarget("api", "production", "listed by the environment")
    assert target.resolved


def test_the_cluster_dimension_names_the_environment() -> None:
    shared = config()
    assert alarm_target(shared, alarm(ClusterName="dhanam-production")).env == "production"
    assert alarm_target(shared, alarm(ClusterName="dhanam-staging")).env == "staging"
    both = alarm(ClusterName="dhanam-staging", ServiceName="dhanam-api")
    assert alarm_target(shared, both) == AlarmTarget("api", "staging", "ClusterName dimension")


def test_a_shared_alarm_with_no_dimension_is_ambiguous() -> None:
    target = alarm_target(config(), alarm(ERRORS, LoadBalancer="app/dhanam-production/abc"))
    assert target.service == "api"
    assert target.env is None
    assert not target.resolved
    assert "production, staging" in target.basis


def test_the_only_environment_in_the_alarms_region_is_its_environment() -> None:
    apart = config(staging_region="eu-west-1")
    assert alarm_target(apart, alarm(region="us-east-1")).env == "production"
    assert alarm_target(apart, alarm(region="eu-west-1")).env == "staging"
    assert alarm_target(apart, alarm(region="us-west-2")).env is None  # e.g. the DR region
    assert alarm_target(apart, alarm(region=None)).env is None  # region unknown: both candidates


def test_a_cluster_no_environment_owns_gets_no_target() -> None:
    # The DR cluster is not an environment: its alarm must not roll back production.
    target = alarm_target(config(prod_alarms=[CPU]), alarm(ClusterName="dhanam-dr"))
    assert target.env is None
    assert "dhanam-dr" in target.basis


def test_config_and_dimension_that_disagree_get_no_target() -> None:
    target = alarm_target(config(prod_alarms=[CPU]), alarm(ClusterName="dhanam-staging"))
    assert target.env is None
    assert "production" in target.basis
    agree = alarm_target(config(prod_alarms=[CPU]), alarm(ClusterName="dhanam-production"))
    assert agree == AlarmTarget("api", "production", "listed by the environment")


def test_the_service_dimension_names_the_service_of_an_unlisted_alarm() -> None:
    unlisted = alarm("dhanam-web-cpu", ClusterName="dhanam-production", ServiceName="dhanam-web")
    assert alarm_target(config(), unlisted) == AlarmTarget(
        "web", "production", "ClusterName dimension"
    )
    # Listed by api but measuring dhanam-web: a contradiction, no target.
    contradiction = alarm(CPU, ClusterName="dhanam-production", ServiceName="dhanam-web")
    assert alarm_target(config(), contradiction).service is None
    # Neither listed nor a known ECS service: no service to roll back.
    assert alarm_target(config(), alarm("other", ServiceName="dhanam-worker")).service is None
    assert alarm_target(config(), alarm("other")) == AlarmTarget(
        None, None, "no service lists the alarm"
    )


def test_metric_math_dimensions_count_and_must_agree() -> None:
    def query(ident: str, cluster: str) -> MetricQuery:
        return MetricQuery(id=ident, dimensions=[Dimension(name="ClusterName", value=cluster)])

    math = alarm().model_copy(
        update={"kind": AlarmKind.METRIC_MATH, "metrics": [query("m1", "dhanam-production")]}
    )
    assert alarm_target(config(), math).env == "production"
    mixed = math.model_copy(
        update={"metrics": [query("m1", "dhanam-production"), query("m2", "dhanam-staging")]}
    )
    assert alarm_target(config(), mixed).env is None


def test_dimensions_are_read_from_a_real_sns_message() -> None:
    message = {
        "AlarmName": CPU,
        "NewStateValue": "ALARM",
        "StateChangeTime": "2026-11-26T10:00:00.000+0000",
        "Region": "US East (N. Virginia)",
        "Trigger": {
            "MetricName": "CPUUtilization",
            "Namespace": "AWS/ECS",
            "Dimensions": [
                {"value": "dhanam-production", "name": "ClusterName"},
                {"value": "dhanam-api", "name": "ServiceName"},
            ],
        },
    }
    parsed = parse_alarm(message)
    assert parsed.dimension_values("ClusterName") == {"dhanam-production"}
    assert alarm_target(config(), parsed) == AlarmTarget(
        "api", "production", "ClusterName dimension"
    )


def test_an_alarm_is_listed_by_one_environment_at_most() -> None:
    data: dict[str, Any] = {
        "slack": {
            "alerts_channel": "C0ALERTS",
            "incidents_channel": "C0INCIDENTS",
            "oncall_channel": "C0ONCALL",
        },
        "environments": {
            "production": {"region": "us-east-1", "cluster": "p", "approvals_required": 0},
            "staging": {"region": "us-east-1", "cluster": "s", "approvals_required": 0},
        },
        "services": {"api": {"ecs_service": "dhanam-api", "container": "api"}},
    }
    data["environments"]["production"]["alarms"] = [ERRORS]
    data["environments"]["staging"]["alarms"] = [ERRORS]
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert "listed by environments production and staging" in "\n".join(caught.value.errors)
    assert config(prod_alarms=[ERRORS]).environment_for_alarm(ERRORS) == "production"
    assert config().environment_for_alarm(ERRORS) is None


def test_a_cluster_of_the_same_name_in_another_region_is_no_environment() -> None:
    """A DR cluster named like production's, in us-west-2, must not roll back production."""
    target = alarm_target(config(), alarm(region="us-west-2", ClusterName="dhanam-production"))
    assert target.env is None
    same_region = alarm_target(config(), alarm(region="us-east-1", ClusterName="dhanam-production"))
    assert same_region.env == "production"
