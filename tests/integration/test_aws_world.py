"""The Dhanam world seeded into moto has exactly the topology README.md's "The sandbox" lists."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from sandbox.aws_world import (
    DhanamWorld,
    MotoServer,
    complete_rollouts,
    seed_dhanam_world,
    set_alarm_state,
)

REGION = "us-east-1"
CLUSTERS = ["dhanam-production", "dhanam-staging"]
TAGS = ["v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0"]


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="module")
def world(moto_server: MotoServer) -> DhanamWorld:
    moto_server.reset()
    return seed_dhanam_world(moto_server.endpoint_url, REGION)


def client(world: DhanamWorld, name: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        name,
        endpoint_url=world.endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_world_summary(world: DhanamWorld) -> None:
    assert world.region == REGION
    assert world.account_id == "123456789012"
    assert world.cluster_names == ("dhanam-production", "dhanam-staging")
    assert world.alarm_names == ("dhanam-api-high-error-rate", "dhanam-api-high-response-time")
    assert world.topic_arn == "arn:aws:sns:us-east-1:123456789012:dhanam-alarms"
    assert set(world.task_definition_arns) == {
        (f, r) for f in ("dhanam-api", "dhanam-web") for r in (1, 2, 3)
    }
    assert world.image("dhanam-api", "v1.2.0") == (
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/dhanam-api:v1.2.0"
    )


@pytest.mark.parametrize("repo", ["dhanam-api", "dhanam-web"])
def test_ecr_repositories_hold_four_tags_with_distinct_digests(
    world: DhanamWorld, repo: str
) -> None:
    ecr = client(world, "ecr")
    details = ecr.describe_images(repositoryName=repo)["imageDetails"]
    by_tag = {d["imageTags"][0]: d["imageDigest"] for d in details}
    assert sorted(by_tag) == TAGS
    assert len(set(by_tag.values())) == 4
    for tag in TAGS:
        assert by_tag[tag] == world.image_digests[(repo, tag)]
        one = ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": tag}])
        assert one["imageDetails"][0]["imageDigest"] == by_tag[tag]
        # The digest is the sha256 of the manifest, as ECR computes it.
        image = ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": tag}])
        manifest = image["images"][0]["imageManifest"]
        assert by_tag[tag] == "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
    with pytest.raises(ClientError) as raised:
        ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": "v9.9.9"}])
    assert raised.value.response["Error"]["Code"] == "ImageNotFoundException"


@pytest.mark.parametrize(
    ("family", "container", "port", "cpu", "memory"),
    [("dhanam-api", "api", 3000, "512", "1024"), ("dhanam-web", "web", 8080, "256", "512")],
)
def test_task_definition_revisions(
    world: DhanamWorld, family: str, container: str, port: int, cpu: str, memory: str
) -> None:
    ecs = client(world, "ecs")
    arns = ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]
    assert [a.rsplit(":", 1)[1] for a in arns] == ["1", "2", "3"]
    for revision, tag in ((1, "v1.0.0"), (2, "v1.1.0"), (3, "v1.2.0")):
        described = ecs.describe_task_definition(taskDefinition=f"{family}:{revision}")
        td = described["taskDefinition"]
        assert td["taskDefinitionArn"] == world.task_definition_arns[(family, revision)]
        assert td["requiresCompatibilities"] == ["FARGATE"]
        assert td["networkMode"] == "awsvpc"
        assert (td["cpu"], td["memory"]) == (cpu, memory)
        assert td["executionRoleArn"].endswith(":role/dhanam-ecs-execution")
        assert td["taskRoleArn"].endswith(":role/dhanam-api-task")
        (c,) = td["containerDefinitions"]
        assert c["name"] == container
        assert c["image"] == world.image(family, tag)
        assert c["portMappings"][0]["containerPort"] == port
        assert {e["name"] for e in c["environment"]} >= {"PORT", "LOG_LEVEL"}
        assert c["logConfiguration"]["logDriver"] == "awslogs"
        assert c["logConfiguration"]["options"]["awslogs-group"] == f"/ecs/{family}"
        assert "/health" in " ".join(c["healthCheck"]["command"])
        assert td["runtimePlatform"]["operatingSystemFamily"] == "LINUX"
    tags = ecs.describe_task_definition(taskDefinition=f"{family}:3", include=["TAGS"])["tags"]
    assert {"key": "app", "value": "dhanam"} in tags


def test_iam_roles(world: DhanamWorld) -> None:
    iam = client(world, "iam")
    names = {r["RoleName"] for r in iam.list_roles()["Roles"]}
    assert {"dhanam-ecs-execution", "dhanam-api-task"} <= names


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_services_run_revision_3_and_look_rolled_out(world: DhanamWorld, cluster: str) -> None:
    ecs = client(world, "ecs")
    assert ecs.describe_clusters(clusters=[cluster])["clusters"][0]["status"] == "ACTIVE"
    described = ecs.describe_services(cluster=cluster, services=["dhanam-api", "dhanam-web"])
    assert described["failures"] == []
    for service in described["services"]:
        family = service["serviceName"]
        assert service["taskDefinition"] == world.task_definition_arns[(family, 3)]
        td = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])
        image = td["taskDefinition"]["containerDefinitions"][0]["image"]
        assert image.endswith(":v1.2.0")
        assert service["desiredCount"] == 2
        assert service["launchType"] == "FARGATE"
        vpc = service["networkConfiguration"]["awsvpcConfiguration"]
        assert vpc["subnets"] == list(world.subnet_ids)
        assert vpc["securityGroups"] == [world.security_group_id]
        assert service["deploymentConfiguration"] == {
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
        }
        (deployment,) = service["deployments"]
        assert deployment["status"] == "PRIMARY"
        assert deployment["rolloutState"] == "COMPLETED"
        assert deployment["taskDefinition"] == service["taskDefinition"]
        assert (service["runningCount"], service["pendingCount"]) == (2, 0)
        assert (deployment["runningCount"], deployment["pendingCount"]) == (2, 0)


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_scalable_targets(world: DhanamWorld, cluster: str) -> None:
    aas = client(world, "application-autoscaling")
    targets = aas.describe_scalable_targets(
        ServiceNamespace="ecs",
        ResourceIds=[f"service/{cluster}/dhanam-api", f"service/{cluster}/dhanam-web"],
    )["ScalableTargets"]
    found = {
        t["ResourceId"]: (t["ScalableDimension"], t["MinCapacity"], t["MaxCapacity"])
        for t in targets
    }
    assert found == {
        f"service/{cluster}/dhanam-api": ("ecs:service:DesiredCount", 2, 10),
        f"service/{cluster}/dhanam-web": ("ecs:service:DesiredCount", 2, 5),
    }


def test_alarms_and_topic(world: DhanamWorld) -> None:
    sns = client(world, "sns")
    topics = [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    assert topics == [world.topic_arn]
    cloudwatch = client(world, "cloudwatch")
    alarms = {
        a["AlarmName"]: a
        for a in cloudwatch.describe_alarms(AlarmNames=list(world.alarm_names))["MetricAlarms"]
    }
    errors = alarms["dhanam-api-high-error-rate"]
    assert (errors["Namespace"], errors["MetricName"]) == (
        "AWS/ApplicationELB",
        "HTTPCode_Target_5XX_Count",
    )
    assert (errors["Statistic"], errors["Period"], errors["EvaluationPeriods"]) == ("Sum", 300, 2)
    assert (errors["Threshold"], errors["ComparisonOperator"]) == (5.0, "GreaterThanThreshold")
    assert errors["Dimensions"] == [
        {"Name": "LoadBalancer", "Value": "app/dhanam-production-alb/0123456789abcdef"}
    ]
    latency = alarms["dhanam-api-high-response-time"]
    assert (latency["MetricName"], latency["Statistic"]) == ("TargetResponseTime", "Average")
    assert (latency["Period"], latency["EvaluationPeriods"], latency["Threshold"]) == (300, 3, 2.0)
    assert latency["ComparisonOperator"] == "GreaterThanThreshold"
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [world.topic_arn]
        assert alarm["StateValue"] == "OK"


def test_rds_instance_and_point_in_time_restore(world: DhanamWorld) -> None:
    rds = client(world, "rds")
    (db,) = rds.describe_db_instances(DBInstanceIdentifier="dhanam-production")["DBInstances"]
    assert db["DBInstanceClass"] == "db.t3.medium"
    assert db["Engine"] == "postgres"
    assert db["AllocatedStorage"] == 100
    assert db["BackupRetentionPeriod"] == 7
    assert db["MultiAZ"] is True
    assert db["DBInstanceStatus"] == "available"
    assert db["LatestRestorableTime"] is not None
    restored = rds.restore_db_instance_to_point_in_time(
        SourceDBInstanceIdentifier="dhanam-production",
        TargetDBInstanceIdentifier="dhanam-production-restore-test",
        UseLatestRestorableTime=True,
    )["DBInstance"]
    assert restored["DBInstanceIdentifier"] == "dhanam-production-restore-test"
    rds.delete_db_instance(
        DBInstanceIdentifier="dhanam-production-restore-test", SkipFinalSnapshot=True
    )


def test_set_alarm_state_returns_the_alarm(world: DhanamWorld) -> None:
    name = "dhanam-api-high-response-time"
    alarm = set_alarm_state(world.endpoint_url, REGION, name, "ALARM", "Threshold Crossed: test")
    assert alarm["AlarmName"] == name
    assert alarm["StateValue"] == "ALARM"
    assert alarm["StateReason"] == "Threshold Crossed: test"
    back = set_alarm_state(world.endpoint_url, REGION, name, "OK", "back to normal")
    assert back["StateValue"] == "OK"
    with pytest.raises(ClientError) as raised:
        set_alarm_state(world.endpoint_url, REGION, "no-such-alarm", "OK", "x")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFound"


def test_moto_ecs_update_and_complete_rollouts(world: DhanamWorld) -> None:
    """What moto does after update_service (see aws_world's module doc), then complete_rollouts."""
    ecs = client(world, "ecs")
    cluster, service = "dhanam-staging", "dhanam-web"
    before = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
    ecs.update_service(cluster=cluster, service=service, taskDefinition="dhanam-web:2")
    after = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
    assert after["taskDefinition"] == "dhanam-web:2"  # as given, not an ARN
    assert after["deployments"] == before["deployments"]  # moto starts no deployment

    complete_rollouts(world.endpoint_url, REGION, cluster, service)
    done = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
    assert done["taskDefinition"] == world.task_definition_arns[("dhanam-web", 2)]
    (deployment,) = done["deployments"]
    assert deployment["taskDefinition"] == done["taskDefinition"]
    assert deployment["rolloutState"] == "COMPLETED"
    assert (deployment["runningCount"], deployment["pendingCount"]) == (2, 0)

    with pytest.raises(RuntimeError, match="not a moto server of this process"):
        complete_rollouts("http://127.0.0.1:9", REGION, cluster, service)
    with pytest.raises(KeyError):
        complete_rollouts(world.endpoint_url, REGION, cluster, "dhanam-nope")


def test_task_definition_fields_round_trip(world: DhanamWorld) -> None:
    ecs = client(world, "ecs")
    registered = ecs.register_task_definition(
        family="roundtrip",
        containerDefinitions=[{"name": "c", "image": "x", "memory": 128}],
        runtimePlatform={"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
        volumes=[{"name": "data", "host": {"sourcePath": "/data"}}],
        placementConstraints=[{"type": "memberOf", "expression": "attribute:x == y"}],
    )["taskDefinition"]
    described = ecs.describe_task_definition(taskDefinition="roundtrip:1")["taskDefinition"]
    for td in (registered, described):
        assert td["runtimePlatform"]["cpuArchitecture"] == "ARM64"
        assert td["volumes"] == [{"name": "data", "host": {"sourcePath": "/data"}}]
        assert td["placementConstraints"][0]["expression"] == "attribute:x == y"


def test_seeding_twice_needs_a_reset(moto_server: MotoServer, world: DhanamWorld) -> None:
    with pytest.raises(RuntimeError, match="already seeded"):
        seed_dhanam_world(moto_server.endpoint_url, REGION)
    # Runs last in this module: it replaces the world the other tests used.
    moto_server.reset()
    again = seed_dhanam_world(moto_server.endpoint_url, REGION)
    assert again.task_definition_arns == world.task_definition_arns
    assert again.image_digests == world.image_digests
    ecs = client(world, "ecs")
    arns = ecs.list_task_definitions(familyPrefix="dhanam-api")["taskDefinitionArns"]
    assert len(arns) == 3
    clusters = ecs.list_clusters()["clusterArns"]
    assert sorted(a.rsplit("/", 1)[1] for a in clusters) == CLUSTERS
