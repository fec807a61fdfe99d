"""dr activate's AWS calls on the requests AWS documents (botocore's Stubber checks each request
against the service model, no network): the restore from replicated backups, the promotion and
its tag, the record's UPSERT and its change followed, and the record sets parsed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from botocore.stub import Stubber

from integrations.aws.clients import AwsClients
from integrations.aws.dr_actions import PROMOTED_TAG, DrActions

REGION = "us-west-2"
BACKUPS = "arn:aws:rds:us-west-2:123456789012:auto-backup:ab-dhanam"
REPLICA = "arn:aws:rds:us-west-2:123456789012:db:dhanam-production-dr"
ZONE = "Z0DHANAMSANDBOXDR"


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> AwsClients:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIADHANAMSANDBOX001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
    return AwsClients(None, "us-east-1")


@pytest.fixture
def rds(clients: AwsClients) -> Iterator[Stubber]:
    with Stubber(clients.client("rds", REGION)) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def route53(clients: AwsClients) -> Iterator[Stubber]:
    with Stubber(clients.client("route53")) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def instance(name: str, status: str, **extra: object) -> dict[str, object]:
    return {"DBInstanceIdentifier": name, "DBInstanceStatus": status, **extra}


async def test_the_newest_replicated_backup_is_restored_at_its_latest_time(
    clients: AwsClients, rds: Stubber
) -> None:
    newest = datetime(2026, 12, 5, 11, 55, tzinfo=UTC)
    rds.add_response(
        "describe_db_instance_automated_backups",
        {
            "DBInstanceAutomatedBackups": [
                {
                    "DBInstanceIdentifier": "dhanam-production",
                    "Status": "replicating",
                    "RestoreWindow": {"LatestTime": newest},
                }
            ]
        },
        {"DBInstanceAutomatedBackupsArn": BACKUPS},
    )
    target = "dhanam-production-dr-1bdd542c"
    rds.add_response(
        "restore_db_instance_to_point_in_time",
        {"DBInstance": instance(target, "creating")},
        {
            "SourceDBInstanceAutomatedBackupsArn": BACKUPS,
            "TargetDBInstanceIdentifier": target,
            "UseLatestRestorableTime": True,
            "Tags": [{"Key": "dhanam:request", "Value": "1bdd542c34ed"}],
        },
    )
    actions = DrActions(clients)
    backup = await actions.newest_backup(REGION, BACKUPS)
    assert backup is not None
    assert (backup.source, backup.latest, backup.status) == (
        "dhanam-production",
        newest,
        "replicating",
    )
    restored = await actions.restore_from_backup(
        REGION, BACKUPS, target, {"dhanam:request": "1bdd542c34ed"}
    )
    assert (restored.identifier, restored.status, restored.promoted) == (target, "creating", True)


async def test_the_replica_is_promoted_then_tagged(clients: AwsClients, rds: Stubber) -> None:
    source = "arn:aws:rds:us-east-1:123456789012:db:dhanam-production"
    rds.add_response(
        "promote_read_replica",
        {
            "DBInstance": instance(
                "dhanam-production-dr", "modifying", ReadReplicaSourceDBInstanceIdentifier=source
            )
        },
        {"DBInstanceIdentifier": "dhanam-production-dr"},
    )
    rds.add_response(
        "add_tags_to_resource",
        {},
        {"ResourceName": REPLICA, "Tags": [{"Key": PROMOTED_TAG, "Value": "1bdd542c34ed"}]},
    )
    actions = DrActions(clients)
    promoted = await actions.promote(REGION, "dhanam-production-dr")
    assert promoted.status == "modifying"
    assert not promoted.promoted  # still replicating until AWS drops the source (or the tag)
    await actions.tag(REGION, REPLICA, {PROMOTED_TAG: "1bdd542c34ed"})


async def test_the_record_is_upserted_and_its_change_followed(
    clients: AwsClients, route53: Stubber
) -> None:
    target = "dhanam-dr-alb-9876543210.us-west-2.elb.amazonaws.com"
    info = {"Id": "/change/C2682N5HXP0BZ4", "SubmittedAt": datetime(2026, 12, 5, tzinfo=UTC)}
    route53.add_response(
        "change_resource_record_sets",
        {"ChangeInfo": {**info, "Status": "PENDING"}},
        {
            "HostedZoneId": ZONE,
            "ChangeBatch": {
                "Comment": "dhanam dr activate (request r1)",
                "Changes": [
                    {
                        "Action": "UPSERT",
                        "ResourceRecordSet": {
                            "Name": "api.dhanam.io",
                            "Type": "CNAME",
                            "TTL": 60,
                            "ResourceRecords": [{"Value": target}],
                        },
                    }
                ],
            },
        },
    )
    route53.add_response(
        "get_change", {"ChangeInfo": {**info, "Status": "INSYNC"}}, {"Id": "C2682N5HXP0BZ4"}
    )
    actions = DrActions(clients)
    change = await actions.upsert_cname(
        ZONE, "api.dhanam.io", target, 60, "dhanam dr activate (request r1)"
    )
    assert change == "C2682N5HXP0BZ4"
    assert await actions.change_status(change) == "INSYNC"


async def test_record_sets_of_the_name_only_with_aliases_and_routing(
    clients: AwsClients, route53: Stubber
) -> None:
    alias = {
        "HostedZoneId": "Z35SXDOTRQ7X7K",
        "DNSName": "primary.elb.amazonaws.com.",
        "EvaluateTargetHealth": True,
    }
    failover = {"Name": "api.dhanam.io.", "Type": "A", "SetIdentifier": "primary"}
    other = {"Name": "apix.dhanam.io.", "Type": "CNAME", "TTL": 60}
    route53.add_response(
        "list_resource_record_sets",
        {
            "ResourceRecordSets": [
                {**failover, "Failover": "PRIMARY", "AliasTarget": alias},
                {**other, "ResourceRecords": [{"Value": "other.example.com"}]},
            ],
            "IsTruncated": False,
            "MaxItems": "20",
        },
        {"HostedZoneId": ZONE, "StartRecordName": "api.dhanam.io", "MaxItems": "20"},
    )
    sets = await DrActions(clients).record_sets(ZONE, "api.dhanam.io")
    assert len(sets) == 1
    assert (sets[0].type, sets[0].alias, sets[0].routed, sets[0].ttl) == ("A", True, True, None)
    assert sets[0].values == ("primary.elb.amazonaws.com.",)
