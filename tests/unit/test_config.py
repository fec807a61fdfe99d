from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.config import Config, load_config, parse_config
from core.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dhanam.example.toml"


def example_data() -> dict[str, object]:
    return tomllib.loads(EXAMPLE.read_text())


def test_example_config_covers_every_documented_key() -> None:
    config = load_config(EXAMPLE)
    prod = config.environments["production"]
    assert config.slack.command == "/dhanam"
    assert config.slack.alerts_channel == "C0ALERTS"
    assert config.approvals.ttl_seconds == 900
    assert prod.approvers == ["U0BOB", "U0CAROL", "S0SRE"]
    assert prod.approvals_required == 1
    assert prod.requesters == ["*"]
    assert prod.db_instance == "dhanam-production"
    assert str(prod.api_base_url) == "https://api.dhanam.io/"
    assert prod.freeze[0].reason == "Holiday freeze"
    assert config.environments["staging"].approvals_required == 0
    assert config.services["api"].alarms == [
        "dhanam-api-high-error-rate",
        "dhanam-api-high-response-time",
    ]
    assert config.services["web"].channel is None
    assert config.sns.topics == ["arn:aws:sns:us-east-1:123456789012:dhanam-alarms"]
    assert config.pagerduty.services == {"PABC123": "C0ONCALL"}
    assert config.service_for_alarm("dhanam-api-high-error-rate") == "api"
    assert config.service_for_alarm("other") is None


def test_freeze_window_covers_its_span_only() -> None:
    window = load_config(EXAMPLE).environments["production"].freeze[0]
    assert window.covers(datetime(2026, 12, 25, tzinfo=UTC))
    assert not window.covers(datetime(2026, 12, 27, tzinfo=UTC))
    env = load_config(EXAMPLE).environments["production"]
    assert env.active_freeze(datetime(2026, 12, 1, tzinfo=UTC)) is None


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["environments"]["production"].update(approvals_requried=2),
            "environments.production.approvals_requried: unknown key",
        ),
        (
            lambda d: d["slack"].update(alerts_channel="alerts"),
            "slack.alerts_channel: must be a Slack channel ID such as C0ALERTS, not 'alerts'",
        ),
        (
            lambda d: d["environments"]["production"].update(approvals_required="two"),
            "environments.production.approvals_required: Input should be a valid integer",
        ),
        (
            lambda d: d["environments"]["staging"].update(approvals_required=2),
            "environments.staging: approvals_required is 2 but no approvers are listed",
        ),
        (
            lambda d: d["environments"]["production"].update(
                approvers=["U0BOB"], approvals_required=2
            ),
            "environments.production: approvals_required is 2 but only 1 approvers are listed",
        ),
        (
            lambda d: d["environments"]["production"].update(approvers=["*"]),
            'environments.production.approvers: "*" is not allowed',
        ),
        (
            lambda d: d["environments"]["production"]["freeze"][0].update(
                end="2026-12-01T00:00:00Z"
            ),
            "environments.production.freeze.0: end must be after start",
        ),
        (
            lambda d: d["environments"]["production"]["freeze"][0].update(
                start="2026-12-24T00:00:00"
            ),
            "environments.production.freeze.0.start: needs a timezone",
        ),
        (lambda d: d.pop("services"), "services: required key is missing"),
        (
            lambda d: d["services"].update({"API": d["services"]["api"]}),
            "services.API.[key]: must be a short lowercase name",
        ),
        (lambda d: d["sns"].update(topics=["dhanam-alarms"]), "sns.topics.0: String should match"),
        (
            lambda d: d["approvals"].update(ttl_seconds=5),
            "approvals.ttl_seconds: Input should be greater",
        ),
    ],
)
def test_every_error_names_its_field_path(mutate, expected: str) -> None:  # type: ignore[no-untyped-def]
    data = example_data()
    mutate(data)
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert any(line.startswith(expected) for line in info.value.errors), info.value.errors


def test_group_approvers_allow_more_required_than_listed_users() -> None:
    data = example_data()
    data["environments"]["production"].update(approvers=["S0SRE"], approvals_required=2)  # type: ignore[index, union-attr]
    assert isinstance(parse_config(data), Config)


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[slack\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(bad)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(binary)


@pytest.mark.parametrize("ttl", [60, 61, 900, 86_400])
def test_approval_ttl_of_60_seconds_or_more_is_accepted(ttl: int) -> None:
    data = example_data()
    approvals = data["approvals"]
    assert isinstance(approvals, dict)
    approvals["ttl_seconds"] = ttl
    assert parse_config(data).approvals.ttl_seconds == ttl


@pytest.mark.parametrize("ttl", [59, 0, -1])
def test_approval_ttl_under_60_seconds_is_refused(ttl: int) -> None:
    data = example_data()
    approvals = data["approvals"]
    assert isinstance(approvals, dict)
    approvals["ttl_seconds"] = ttl
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert any(
        line.startswith("approvals.ttl_seconds: Input should be greater than or equal to 60")
        for line in info.value.errors
    ), info.value.errors


# The contract's own example of the keys added for one-off tasks and disaster recovery
# (../shared/PRODUCT.md §2): accepted as written, before the commands that use them exist.
TASKS_AND_DR = """
[services.api]
ecs_service = "dhanam-api"
container = "api"
before_deploy = "migrate"
[services.api.tasks.migrate]
command = ["pnpm", "db:migrate"]
approvals = "environment"
timeout_seconds = 900
[services.api.tasks.migrate-status]
command = ["pnpm", "db:status"]
approvals = 0

[dr]
region = "us-west-2"
cluster = "dhanam-dr"
db_instance = "dhanam-production-dr"
rpo_seconds = 3600
rto_seconds = 14400
"""


def _with_tasks_and_dr() -> dict[str, object]:
    data = example_data()
    extra = tomllib.loads(TASKS_AND_DR)
    services = data["services"]
    assert isinstance(services, dict)
    services["api"] = extra["services"]["api"]
    data["dr"] = extra["dr"]
    return data


def test_tasks_before_deploy_and_dr_are_accepted_as_the_contract_writes_them() -> None:
    config = parse_config(_with_tasks_and_dr())
    api = config.services["api"]
    assert api.before_deploy == "migrate"
    assert api.tasks["migrate"].command == ["pnpm", "db:migrate"]
    assert api.tasks["migrate"].approvals == "environment"
    assert api.tasks["migrate-status"].approvals == 0
    assert api.tasks["migrate-status"].timeout_seconds == 900
    assert config.dr is not None
    assert (config.dr.region, config.dr.cluster, config.dr.rpo_seconds) == (
        "us-west-2", "dhanam-dr", 3600,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["services"]["api"].update(before_deploy="seed"),
            'services.api: before_deploy names "seed", which is not one of its '
            "tasks (known: migrate, migrate-status)",
        ),
        (
            lambda d: d["services"]["api"]["tasks"]["migrate"].update(approvals=2),
            "services.api.tasks.migrate.approvals",
        ),
        (
            lambda d: d["services"]["api"]["tasks"]["migrate"].update(command=[]),
            "services.api.tasks.migrate.command",
        ),
        (
            lambda d: d["services"]["api"]["tasks"].update({"Migrate!": {"command": ["x"]}}),
            "services.api.tasks.Migrate!.[key]",
        ),
        (
            lambda d: d["dr"].update(automated_backup_arn="arn:aws:rds:us-west-2:1:auto-backup:x"),
            "dr: give exactly one of db_instance",
        ),
        (
            lambda d: d["dr"].update(record_name="api.dhanam.io"),
            "dr: the failover record needs",
        ),
        (
            lambda d: d["dr"].update(region="us-east-1", cluster="dhanam-production"),
            "(top level): [dr] names cluster 'dhanam-production' in us-east-1, which is "
            "environment production's",
        ),
        (
            lambda d: d["dr"].update(region="us-east-1", db_instance="dhanam-production"),
            "(top level): [dr] db_instance 'dhanam-production' is environment production's "
            "database",
        ),
    ],
)
def test_bad_tasks_and_dr_name_the_field(mutate, expected: str) -> None:  # type: ignore[no-untyped-def]
    data = _with_tasks_and_dr()
    mutate(data)
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert any(line.startswith(expected) for line in info.value.errors), info.value.errors


def test_the_summary_names_the_tasks_and_the_dr_targets() -> None:
    lines = parse_config(_with_tasks_and_dr()).summary()
    assert "service api: tasks migrate, migrate-status, before_deploy migrate" in lines
    assert (
        "disaster recovery: us-west-2/dhanam-dr, database dhanam-production-dr, RPO 1 h, RTO 4 h"
    ) in lines
