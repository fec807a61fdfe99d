"""DrReader on answers moto does not give: replicated automated backups with a restore window,
and failover records that are aliases or several record sets (botocore's Stubber, no network)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.stub import Stubber

from core.clock import ManualClock
from core.config import Config, DrConfig, load_config
from integrations.aws.clients import AwsClients
from integrations.aws.dr import DrReader, production_env
from integrations.aws.gateway import AwsGateway
from integrations.aws.metrics import CloudWatchReader
from sandbox.world import EXAMPLE_CONFIG

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
BACKUPS = "arn:aws:rds:us-west-2:123456789012:auto-backup:ab-dhanam"


@pytest.fixture
def config() -> Config:
    return load_config(Path(EXAMPLE_CONFIG))


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> AwsClients:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIADHANAMSANDBOX001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
    return AwsClients(None, "us-east-1")


def reader(config: Config, clients: AwsClients) -> DrReader:
    return DrReader(
        config=config,
        clients=clients,
        aws=AwsGateway(clients),
        cloudwatch=CloudWatchReader(clients),
        clock=ManualClock(NOW),
    )


@pytest.fixture
def rds(clients: AwsClients) -> Iterator[Stubber]:
    with Stubber(clients.client("rds", "us-west-2")) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def route53(clients: AwsClients) -> Iterator[Stubber]:
    with Stubber(clients.client("route53")) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def backups_config(config: Config) -> DrConfig:
    assert config.dr is not None
    return config.dr.model_copy(update={"db_instance": None, "automated_backup_arn": BACKUPS})


async def test_replicated_backups_give_the_rpo_from_the_newest_restorable_time(
    config: Config, clients: AwsClients, rds: Stubber
) -> None:
    latest = NOW - timedelta(minutes=20)
    rds.add_response(
        "describe_db_instance_automated_backups",
        {
            "DBInstanceAutomatedBackups": [
                {
                    "DBInstanceArn": "arn:aws:rds:us-east-1:123456789012:db:dhanam-production",
                    "Status": "replicating",
                    "RestoreWindow": {
                        "EarliestTime": NOW - timedelta(days=7),
                        "LatestTime": latest,
                    },
                }
            ]
        },
        {"DBInstanceAutomatedBackupsArn": BACKUPS},
    )
    dr = backups_config(config)
    database = await reader(config, clients).database(dr)
    assert (database.kind, database.status, database.latest_restorable) == (
        "backups",
        "replicating",
        latest,
    )


async def test_no_replicated_backups(config: Config, clients: AwsClients, rds: Stubber) -> None:
    rds.add_response(
        "describe_db_instance_automated_backups",
        {"DBInstanceAutomatedBackups": []},
        {"DBInstanceAutomatedBackupsArn": BACKUPS},
    )
    database = await reader(config, clients).database(backups_config(config))
    assert not database.found


async def test_an_alias_record_pointing_at_the_dr_target(
    config: Config, clients: AwsClients, route53: Stubber
) -> None:
    assert config.dr is not None
    route53.add_response(
        "list_resource_record_sets",
        {
            "ResourceRecordSets": [
                {
                    "Name": "api.dhanam.io.",
                    "Type": "A",
                    "AliasTarget": {
                        "HostedZoneId": "Z1H1FL5HABSF5",
                        "DNSName": config.dr.target.upper() + ".",  # type: ignore[union-attr]
                        "EvaluateTargetHealth": True,
                    },
                },
                {"Name": "apix.dhanam.io.", "Type": "CNAME", "TTL": 60,
                 "ResourceRecords": [{"Value": "elsewhere.example.com"}]},
            ],
            "IsTruncated": False,
            "MaxItems": "20",
        },
        {"HostedZoneId": "Z0DHANAMSANDBOXDR", "StartRecordName": "api.dhanam.io", "MaxItems": "20"},
    )  # fmt: skip
    record = await reader(config, clients).record(config.dr)
    assert record.type == "A"
    assert record.points_at_dr
    assert record.values == (config.dr.target.upper() + ".",)  # type: ignore[union-attr]


async def test_a_record_of_another_name_is_not_the_failover_record(
    config: Config, clients: AwsClients, route53: Stubber
) -> None:
    assert config.dr is not None
    route53.add_response(
        "list_resource_record_sets",
        {
            "ResourceRecordSets": [
                {"Name": "apis.dhanam.io.", "Type": "CNAME", "TTL": 60,
                 "ResourceRecords": [{"Value": "x.example.com"}]},
            ],
            "IsTruncated": False,
            "MaxItems": "20",
        },
    )  # fmt: skip
    record = await reader(config, clients).record(config.dr)
    assert not record.found
    assert record.values == ()


def test_production_is_the_environment_named_so_else_the_first(config: Config) -> None:
    assert production_env(config) == "production"
    renamed = config.model_copy(
        update={"environments": {"prod": config.environments["production"], **{
            k: v for k, v in config.environments.items() if k != "production"}}}
    )  # fmt: skip
    assert production_env(renamed) == "prod"


async def test_a_hung_primary_leaves_the_dr_side_of_a_service_shown(
    config: Config, clients: AwsClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Production's side of a DR service line gets part of the budget: when the primary hangs
    (an outage), the line still shows the DR service, with production unreadable."""
    import asyncio  # noqa: PLC0415

    from integrations.aws import dr as dr_module  # noqa: PLC0415
    from integrations.aws.dr_models import Reading, ServiceSide  # noqa: PLC0415

    read = reader(config, clients)
    read.budget = 0.5
    dr = config.dr
    assert dr is not None

    async def hangs(_name: str) -> ServiceSide:
        await asyncio.sleep(60)
        raise AssertionError("not reached")

    async def dr_side(*_args: object) -> ServiceSide:
        await asyncio.sleep(0.1)
        return ServiceSide(desired=0, running=0, task_definition="dhanam-api:1", image=None)

    monkeypatch.setattr(read, "_production", hangs)
    monkeypatch.setattr(read, "_side", dr_side)
    line = await dr_module.bounded("service api", read.budget, lambda: read.service(dr, "api"))
    assert isinstance(line, Reading)
    assert line.value is not None, line.error  # the DR side is shown…
    assert line.value.dr is not None
    assert line.value.production.error is not None  # …and production said unreadable
    assert "timed out" in line.value.production.error
