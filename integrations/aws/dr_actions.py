"""The AWS calls of `dr activate` that the rest of the bot does not make: the DR database (the
replica as it is now, PromoteReadReplica, a restore from replicated automated backups) and the
failover record (its record sets, a CNAME UPSERT, the change followed with GetChange).

Async and typed like `AwsGateway`: every boto3 call goes through `call_aws` (so every mutation
passes the execution's checkpoint first) and every failure is an `AwsError`. ECS is the
gateway's (describe, register a copy of a revision, update-service).

moto 5.2 keeps `ReadReplicaSourceDBInstanceIdentifier` after PromoteReadReplica (AWS drops it),
so a promotion is also told by the tag `dhanam:promoted-by=<request id>` the activation puts on
the instance right after promoting it: `DrDatabaseState.promoted` is true when either says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from integrations.aws.clients import AwsClients
from integrations.aws.errors import call_aws
from integrations.aws.rds import describe_db_instance_raw

PROMOTED_TAG = "dhanam:promoted-by"  # the request that promoted the replica
AVAILABLE = "available"
INSYNC = "INSYNC"
CNAME = "CNAME"
_RECORDS_READ = "20"  # record sets of one name (weighted/failover sets share it)


@dataclass(frozen=True)
class DrDatabaseState:
    """A DB instance in the DR region, as DescribeDBInstances shows it now."""

    identifier: str
    arn: str | None
    resource_id: str | None  # DbiResourceId: the same for the instance's whole life
    status: str
    source: str | None  # ReadReplicaSourceDBInstanceIdentifier (None: not a replica)
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def promoted(self) -> bool:
        """A standalone database now: no longer replicating, or promoted by an activation."""
        return self.source is None or PROMOTED_TAG in self.tags

    @property
    def available(self) -> bool:
        return self.status == AVAILABLE


def _state(raw: Mapping[str, Any]) -> DrDatabaseState:
    source = raw.get("ReadReplicaSourceDBInstanceIdentifier")
    return DrDatabaseState(
        identifier=str(raw.get("DBInstanceIdentifier", "")),
        arn=str(raw["DBInstanceArn"]) if raw.get("DBInstanceArn") else None,
        resource_id=str(raw["DbiResourceId"]) if raw.get("DbiResourceId") else None,
        status=str(raw.get("DBInstanceStatus") or ""),
        source=str(source) if source else None,
        tags={str(t["Key"]): str(t.get("Value", "")) for t in raw.get("TagList") or []},
    )


@dataclass(frozen=True)
class ReplicatedBackup:
    """The newest restorable point of the replicated automated backups."""

    arn: str
    source: str  # the primary instance's identifier (DBInstanceIdentifier)
    latest: datetime | None  # RestoreWindow.LatestTime
    status: str


@dataclass(frozen=True)
class RecordSet:
    name: str
    type: str
    ttl: int | None
    values: tuple[str, ...]  # record values, or the alias target's DNS name
    alias: bool
    routed: bool  # has a SetIdentifier: weighted, failover, latency… routing

    def points_at(self, target: str) -> bool:
        return bool(self.values) and all(_host(v) == _host(target) for v in self.values)


def _host(name: str) -> str:
    return name.strip().rstrip(".").lower()


class DrActions:
    def __init__(self, clients: AwsClients) -> None:
        self.clients = clients

    # -- the database --------------------------------------------------------------------------
    async def database(self, region: str, identifier: str) -> DrDatabaseState | None:
        raw = await describe_db_instance_raw(self.clients, region, identifier)
        return _state(raw) if raw is not None else None

    async def promote(self, region: str, identifier: str) -> DrDatabaseState:
        rds = self.clients.client("rds", region)
        response = await call_aws(
            "PromoteReadReplica", rds.promote_read_replica, DBInstanceIdentifier=identifier
        )
        return _state(response["DBInstance"])

    async def tag(self, region: str, arn: str, tags: Mapping[str, str]) -> None:
        rds = self.clients.client("rds", region)
        await call_aws(
            "AddTagsToResource",
            rds.add_tags_to_resource,
            ResourceName=arn,
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )

    async def newest_backup(self, region: str, arn: str) -> ReplicatedBackup | None:
        """The replicated automated backups of `arn` (None: AWS lists none)."""
        rds = self.clients.client("rds", region)
        listed = await call_aws(
            "DescribeDBInstanceAutomatedBackups",
            rds.describe_db_instance_automated_backups,
            DBInstanceAutomatedBackupsArn=arn,
        )
        backups = listed.get("DBInstanceAutomatedBackups", [])
        if not backups:
            return None
        newest = backups[0]
        times = [
            b["RestoreWindow"]["LatestTime"]
            for b in backups
            if isinstance(b.get("RestoreWindow", {}).get("LatestTime"), datetime)
        ]
        return ReplicatedBackup(
            arn=arn,
            source=str(newest.get("DBInstanceIdentifier") or ""),
            latest=max(times).astimezone(UTC) if times else None,
            status=str(newest.get("Status") or ""),
        )

    async def restore_from_backup(
        self, region: str, backup_arn: str, target: str, tags: Mapping[str, str]
    ) -> DrDatabaseState:
        """RestoreDBInstanceToPointInTime from the replicated backups, to their latest
        restorable time, into `target` (RDS's defaults for the class and network: the source's
        class, the region's default subnet group)."""
        rds = self.clients.client("rds", region)
        response = await call_aws(
            "RestoreDBInstanceToPointInTime",
            rds.restore_db_instance_to_point_in_time,
            SourceDBInstanceAutomatedBackupsArn=backup_arn,
            TargetDBInstanceIdentifier=target,
            UseLatestRestorableTime=True,
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )
        return _state(response["DBInstance"])

    # -- the failover record -------------------------------------------------------------------
    async def record_sets(self, zone_id: str, name: str) -> list[RecordSet]:
        """Every record set of exactly `name` in the zone (NS and SOA aside)."""
        route53 = self.clients.client("route53")
        response = await call_aws(
            "ListResourceRecordSets",
            route53.list_resource_record_sets,
            HostedZoneId=zone_id,
            StartRecordName=name,
            MaxItems=_RECORDS_READ,
        )
        found = []
        for raw in response.get("ResourceRecordSets", []):
            if _host(raw["Name"]) != _host(name) or raw["Type"] in ("NS", "SOA"):
                continue
            values = [str(r["Value"]) for r in raw.get("ResourceRecords", [])]
            alias = raw.get("AliasTarget")
            if alias:
                values.append(str(alias["DNSName"]))
            found.append(
                RecordSet(
                    name=str(raw["Name"]),
                    type=str(raw["Type"]),
                    ttl=int(raw["TTL"]) if raw.get("TTL") is not None else None,
                    values=tuple(values),
                    alias=bool(alias),
                    routed=bool(raw.get("SetIdentifier")),
                )
            )
        return found

    async def upsert_cname(
        self, zone_id: str, name: str, target: str, ttl: int, comment: str
    ) -> str:
        """UPSERT `name` as a CNAME to `target`; the change's id (for GetChange)."""
        route53 = self.clients.client("route53")
        response = await call_aws(
            "ChangeResourceRecordSets",
            route53.change_resource_record_sets,
            HostedZoneId=zone_id,
            ChangeBatch={
                "Comment": comment[:256],
                "Changes": [
                    {
                        "Action": "UPSERT",
                        "ResourceRecordSet": {
                            "Name": name,
                            "Type": CNAME,
                            "TTL": ttl,
                            "ResourceRecords": [{"Value": target}],
                        },
                    }
                ],
            },
        )
        return str(response["ChangeInfo"]["Id"]).rsplit("/", 1)[-1]

    async def change_status(self, change_id: str) -> str:
        """PENDING or INSYNC."""
        route53 = self.clients.client("route53")
        response = await call_aws("GetChange", route53.get_change, Id=change_id)
        return str(response["ChangeInfo"]["Status"])
