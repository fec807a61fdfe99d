"""The Dhanam DR region (us-west-2) on moto, seeded by `seed_dhanam_world` after the primary.

- the DR ECS cluster ``dhanam-dr`` with ``dhanam-api`` and ``dhanam-web`` at 0 tasks, their task
  definitions registered in us-west-2 with production's revision-3 images (v1.2.0, the same
  us-east-1 ECR image references: no ECR in the DR region);
- ``dhanam-production-dr``, a cross-region read replica of ``dhanam-production`` (moto 5.2 makes
  it ``available`` with the source's ARN as ReadReplicaSourceDBInstanceIdentifier; it publishes
  no ReplicaLag datapoints, so the lag reads "unknown" until a test puts one. moto 5.2 keeps
  that source after PromoteReadReplica, and cannot delete the replica before a promotion);
- the Route 53 zone ``dhanam.io`` (global) with ``api.dhanam.io`` pointing at the primary ALB
  and ``app.dhanam.io`` at the CloudFront distribution serving the web app.

The zone's id is the config's ``route53_zone_id`` (examples/dhanam.example.toml): moto draws
zone ids at random, so the id is registered with moto's id manager first. That works for a moto
server in this process (every ``MotoServer``); any other endpoint gets a random id, which
``DrWorld.zone_id`` returns.

``break_dr`` breaks one part for tests and the console: the replica deleted, a DR service
deleted, the failover record deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import boto3
from moto.route53.models import HostedZoneIdentifier
from moto.utilities.id_generator import moto_id_manager

DR_REGION = "us-west-2"
DR_CLUSTER = "dhanam-dr"
DR_DB_INSTANCE = "dhanam-production-dr"
ZONE_NAME = "dhanam.io"
ZONE_ID = "Z0DHANAMSANDBOXDR"  # examples/dhanam.example.toml [dr] route53_zone_id
RECORD_NAME = "api.dhanam.io"
PRIMARY_TARGET = "dhanam-production-alb-0123456789.us-east-1.elb.amazonaws.com"
DR_TARGET = "dhanam-dr-alb-9876543210.us-west-2.elb.amazonaws.com"  # [dr] target
_PORTS = {"dhanam-api": ("api", 3000, "512", "1024"), "dhanam-web": ("web", 8080, "256", "512")}

Breakable = Literal["replica", "service", "record"]


@dataclass(frozen=True)
class DrWorld:
    region: str
    cluster: str
    service_names: tuple[str, ...]
    task_definition_arns: dict[str, str]  # family -> ARN (revision 1 in the DR region)
    db_instance_identifier: str
    source_db_arn: str
    zone_id: str
    record_name: str
    primary_target: str
    dr_target: str
    distribution_id: str
    distribution_domain: str


def _client(service: str, endpoint_url: str, region: str, credentials: dict[str, str]) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint_url,
        region_name=region,
        **credentials,
    )


def seed_dr_world(
    endpoint_url: str,
    account_id: str,
    primary_region: str,
    source_db_instance: str,
    images: dict[str, str],  # family -> production's image (revision 3)
    *,
    credentials: dict[str, str],
) -> DrWorld:
    """Create the DR region next to an already seeded primary (see the module doc)."""

    def client(name: str, region: str = DR_REGION) -> Any:
        return _client(name, endpoint_url, region, credentials)

    ecs = client("ecs")
    ecs.create_cluster(clusterName=DR_CLUSTER, tags=[{"key": "app", "value": "dhanam"}])
    arns: dict[str, str] = {}
    for family, image in images.items():
        name, port, cpu, memory = _PORTS[family]
        arns[family] = ecs.register_task_definition(
            family=family,
            containerDefinitions=[
                {
                    "name": name,
                    "image": image,
                    "essential": True,
                    "portMappings": [{"containerPort": port, "protocol": "tcp"}],
                }
            ],
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu=cpu,
            memory=memory,
            executionRoleArn=f"arn:aws:iam::{account_id}:role/dhanam-ecs-execution",
            tags=[{"key": "app", "value": "dhanam"}],
        )["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(
            cluster=DR_CLUSTER,
            serviceName=family,
            taskDefinition=arns[family],
            desiredCount=0,
            launchType="FARGATE",
            tags=[{"key": "app", "value": "dhanam"}],
        )

    source_arn = f"arn:aws:rds:{primary_region}:{account_id}:db:{source_db_instance}"
    client("rds").create_db_instance_read_replica(
        DBInstanceIdentifier=DR_DB_INSTANCE,
        SourceDBInstanceIdentifier=source_arn,
        DBInstanceClass="db.t3.medium",
        Tags=[{"Key": "app", "Value": "dhanam"}],
    )

    cloudfront = client("cloudfront", primary_region)
    distribution = cloudfront.create_distribution(DistributionConfig=_distribution())[
        "Distribution"
    ]

    # Route 53 is global; moto names a zone by its name with the final dot.
    moto_id_manager.set_custom_id(HostedZoneIdentifier(account_id, f"{ZONE_NAME}.", None), ZONE_ID)
    route53 = client("route53", primary_region)
    zone_id = route53.create_hosted_zone(Name=ZONE_NAME, CallerReference="dhanam-sandbox")[
        "HostedZone"
    ]["Id"].rsplit("/", 1)[-1]
    records = {RECORD_NAME: PRIMARY_TARGET, "app.dhanam.io": distribution["DomainName"]}
    route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": name,
                        "Type": "CNAME",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": value}],
                    },
                }
                for name, value in records.items()
            ]
        },
    )
    return DrWorld(
        region=DR_REGION,
        cluster=DR_CLUSTER,
        service_names=tuple(images),
        task_definition_arns=arns,
        db_instance_identifier=DR_DB_INSTANCE,
        source_db_arn=source_arn,
        zone_id=zone_id,
        record_name=RECORD_NAME,
        primary_target=PRIMARY_TARGET,
        dr_target=DR_TARGET,
        distribution_id=distribution["Id"],
        distribution_domain=distribution["DomainName"],
    )


def _distribution() -> dict[str, Any]:
    origin = "dhanam-web-alb"
    return {
        "CallerReference": "dhanam-web",
        "Comment": "Dhanam web app",
        "Enabled": True,
        "Aliases": {"Quantity": 1, "Items": ["app.dhanam.io"]},
        "Origins": {
            "Quantity": 1,
            "Items": [
                {
                    "Id": origin,
                    "DomainName": PRIMARY_TARGET,
                    "CustomOriginConfig": {
                        "HTTPPort": 80,
                        "HTTPSPort": 443,
                        "OriginProtocolPolicy": "https-only",
                    },
                }
            ],
        },
        "DefaultCacheBehavior": {
            "TargetOriginId": origin,
            "ViewerProtocolPolicy": "redirect-to-https",
            "MinTTL": 0,
        },
    }


def break_dr(
    endpoint_url: str, what: Breakable, credentials: dict[str, str], *, service: str = "dhanam-web"
) -> None:
    """Break one part of the DR region: delete the replica, a DR service, or the failover
    record (so `dr status` shows that line as not found)."""
    if what == "replica":
        # moto 5.2 fails deleting a cross-region replica (its source is in another region's
        # backend: ValueError, HTTP 500); promoted first, it deletes cleanly.
        rds = _client("rds", endpoint_url, DR_REGION, credentials)
        rds.promote_read_replica(DBInstanceIdentifier=DR_DB_INSTANCE)
        rds.delete_db_instance(DBInstanceIdentifier=DR_DB_INSTANCE, SkipFinalSnapshot=True)
    elif what == "service":
        _client("ecs", endpoint_url, DR_REGION, credentials).delete_service(
            cluster=DR_CLUSTER, service=service, force=True
        )
    else:
        route53 = _client("route53", endpoint_url, DR_REGION, credentials)
        found = route53.list_resource_record_sets(
            HostedZoneId=ZONE_ID, StartRecordName=RECORD_NAME, MaxItems="1"
        )["ResourceRecordSets"]
        route53.change_resource_record_sets(
            HostedZoneId=ZONE_ID,
            ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": found[0]}]},
        )
