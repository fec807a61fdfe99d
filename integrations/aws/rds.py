"""RDS point-in-time restore: the source instance's restorable window, and the restore itself.

Async and typed like `AwsGateway`: every boto3 call runs off the loop through `call_aws`, and
every failure is an `AwsError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from integrations.aws.clients import AwsClients
from integrations.aws.errors import AwsError, call_aws

_NOT_FOUND = "DBInstanceNotFound"


def _utc(value: Any) -> datetime | None:
    return value.astimezone(UTC) if isinstance(value, datetime) else None


@dataclass(frozen=True)
class DbInstance:
    identifier: str
    status: str
    engine: str
    instance_class: str
    multi_az: bool
    subnet_group: str | None
    security_group_ids: tuple[str, ...]
    parameter_group: str | None  # a custom parameter group (None: the engine's default)
    backup_retention_days: int
    created: datetime | None
    latest_restorable: datetime | None
    arn: str | None = None
    resource_id: str | None = None  # DbiResourceId: stays the same for the instance's life
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def earliest_restorable(self) -> datetime | None:
        """The start of the point-in-time window: `latest - retention`, or creation if later."""
        if self.latest_restorable is None or self.backup_retention_days <= 0:
            return None
        earliest = self.latest_restorable - timedelta(days=self.backup_retention_days)
        if self.created is not None and self.created > earliest:
            return self.created
        return earliest


def db_instance(raw: Mapping[str, Any]) -> DbInstance:
    """Parse one element of DescribeDBInstances' `DBInstances` (or a restore's `DBInstance`)."""
    subnet_group = (raw.get("DBSubnetGroup") or {}).get("DBSubnetGroupName")
    groups = [
        str(g["DBParameterGroupName"])
        for g in raw.get("DBParameterGroups") or []
        if g.get("DBParameterGroupName")
    ]
    custom = next((g for g in groups if not g.startswith("default.")), None)
    return DbInstance(
        identifier=str(raw.get("DBInstanceIdentifier", "")),
        status=str(raw.get("DBInstanceStatus", "")),
        engine=str(raw.get("Engine", "")),
        instance_class=str(raw.get("DBInstanceClass", "")),
        multi_az=bool(raw.get("MultiAZ", False)),
        subnet_group=str(subnet_group) if subnet_group else None,
        security_group_ids=tuple(
            str(g["VpcSecurityGroupId"])
            for g in raw.get("VpcSecurityGroups") or []
            if g.get("VpcSecurityGroupId")
        ),
        parameter_group=custom,
        backup_retention_days=int(raw.get("BackupRetentionPeriod") or 0),
        created=_utc(raw.get("InstanceCreateTime")),
        latest_restorable=_utc(raw.get("LatestRestorableTime")),
        arn=str(raw["DBInstanceArn"]) if raw.get("DBInstanceArn") else None,
        resource_id=str(raw["DbiResourceId"]) if raw.get("DbiResourceId") else None,
        tags={
            str(t["Key"]): str(t.get("Value", "")) for t in raw.get("TagList") or [] if t.get("Key")
        },
    )


async def describe_db_instance_raw(
    clients: AwsClients, region: str, identifier: str
) -> Mapping[str, Any] | None:
    """DescribeDBInstances' entry for `identifier`, or None when there is none of that name."""
    rds = clients.client("rds", region)
    try:
        response = await call_aws(
            "DescribeDBInstances", rds.describe_db_instances, DBInstanceIdentifier=identifier
        )
    except AwsError as exc:
        if exc.code == _NOT_FOUND:
            return None
        raise
    found = response.get("DBInstances", [])
    return found[0] if found else None


class RdsGateway:
    def __init__(self, clients: AwsClients) -> None:
        self.clients = clients

    async def find_db_instance(self, region: str, identifier: str) -> DbInstance | None:
        """The instance, or None when there is none of that name."""
        raw = await describe_db_instance_raw(self.clients, region, identifier)
        return db_instance(raw) if raw is not None else None

    async def describe_db_instance(self, region: str, identifier: str) -> DbInstance:
        found = await self.find_db_instance(region, identifier)
        if found is None:
            message = f'RDS instance "{identifier}" not found ({region})'
            raise AwsError(
                operation="DescribeDBInstances",
                code=_NOT_FOUND,
                message=message,
                user_message=message,
            )
        return found

    async def restore_to_point_in_time(
        self,
        region: str,
        source: DbInstance,
        target_identifier: str,
        restore_time: datetime | None,
        tags: Mapping[str, str] | None = None,
    ) -> DbInstance:
        """Restore `source` into a new instance (`restore_time` None: the latest restorable
        time), with the source's class, Multi-AZ, subnet group, security groups and custom
        parameter group. The source is not touched."""
        kwargs: dict[str, Any] = {
            "SourceDBInstanceIdentifier": source.identifier,
            "TargetDBInstanceIdentifier": target_identifier,
            "MultiAZ": source.multi_az,
        }
        if restore_time is None:
            kwargs["UseLatestRestorableTime"] = True
        else:
            kwargs["RestoreTime"] = restore_time.astimezone(UTC)
        if source.instance_class:
            kwargs["DBInstanceClass"] = source.instance_class
        if source.subnet_group:
            kwargs["DBSubnetGroupName"] = source.subnet_group
        if source.security_group_ids:
            kwargs["VpcSecurityGroupIds"] = list(source.security_group_ids)
        if source.parameter_group:
            kwargs["DBParameterGroupName"] = source.parameter_group
        if tags:
            kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        rds = self.clients.client("rds", region)
        response = await call_aws(
            "RestoreDBInstanceToPointInTime", rds.restore_db_instance_to_point_in_time, **kwargs
        )
        return db_instance(response["DBInstance"])
