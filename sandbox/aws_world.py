"""The Dhanam AWS world, served by moto: a local stand-in for tests and ``dhanam-bot sandbox``.

``MotoServer`` runs moto's HTTP server in a thread of this process; ``seed_dhanam_world`` creates
the topology README.md's "The sandbox" lists through plain boto3 calls, so any moto server
(in-process or not) can be seeded.

What moto 5.2 does with ECS services (checked against moto 5.2.5, server mode):

* ``create_service`` makes one deployment ``{status: PRIMARY, rolloutState: IN_PROGRESS,
  runningCount: 0, pendingCount: desiredCount, failedTasks: 0}``; the service itself has
  ``runningCount`` 0 and ``pendingCount`` = desired. The counts come from the environment variables
  ``MOTO_ECS_SERVICE_RUNNING`` / ``MOTO_ECS_SERVICE_FAILED_TASKS`` *of the server process*, read
  when the service is created (rolloutState is COMPLETED only if running >= desired then).
  ``deploymentConfiguration`` given to ``create_service`` is dropped (describe shows none);
  ``update_service(deploymentConfiguration=...)`` stores it.
* ``update_service(taskDefinition=X)`` sets the service's ``taskDefinition`` to the string X *as
  given* (``"dhanam-api:2"`` stays a family:revision, not an ARN) and touches no deployment: the
  PRIMARY deployment keeps the old task-definition ARN, id, counts and rolloutState. With
  ``forceNewDeployment`` only that deployment's id/createdAt/updatedAt change (its
  rolloutStateReason still names the old id). There is never a second (ACTIVE) deployment.
* ``update_service(desiredCount=N)`` sets the service's running=N, pending=0 at once, but not the
  deployment's counts. Nothing moves rolloutState to COMPLETED later: describe_services returns
  the same deployment forever, and no tasks exist (``list_tasks`` is empty).
* So a rollout cannot be completed through the API. ``complete_rollouts`` does it by editing
  moto's backend objects, which is only possible when the server runs in this process (a
  ``MotoServer``); for any other endpoint it raises ``RuntimeError``.
* All moto servers of one process share one state (moto's backends are module globals), and
  ``reset()`` replaces the backend objects (do not hold on to them).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
from moto.server import ThreadedMotoServer

from sandbox.aws_logs import seed_logs
from sandbox.dr_world import seed_dr_world

SERVICES = ("dhanam-api", "dhanam-web")
CLUSTERS = ("dhanam-production", "dhanam-staging")
IMAGE_TAGS = ("v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0")
REVISION_TAGS = {1: "v1.0.0", 2: "v1.1.0", 3: "v1.2.0"}
ALARM_NAMES = ("dhanam-api-high-error-rate", "dhanam-api-high-response-time")
DB_INSTANCE = "dhanam-production"
TOPIC_NAME = "dhanam-alarms"
_CONTAINERS = {
    "dhanam-api": ("api", 3000, "512", "1024"),
    "dhanam-web": ("web", 8080, "256", "512"),
}
_MAX_TASKS = {"dhanam-api": 10, "dhanam-web": 5}
_ALB = "app/dhanam-production-alb/0123456789abcdef"
_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
# moto accepts any credentials; these are distinctive so that the test suite can prove they
# never reach a log line (tests/fixtures/logs.py). An access key id of AWS's shape (AKIA…).
SANDBOX_AWS_ACCESS_KEY_ID = "AKIADHANAMSANDBOX001"
SANDBOX_AWS_SECRET_ACCESS_KEY = "aws-SECRET-dhanam-sandbox-0123456789abcd"  # noqa: S105 - fake
_CREDENTIALS = {
    "aws_access_key_id": SANDBOX_AWS_ACCESS_KEY_ID,
    "aws_secret_access_key": SANDBOX_AWS_SECRET_ACCESS_KEY,
}
_IN_PROCESS: dict[str, MotoServer] = {}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _request(endpoint_url: str, method: str, path: str, timeout: float = 5.0) -> int:
    parts = urlsplit(endpoint_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


class MotoServer:
    """moto's server on 127.0.0.1 and a free port, in a thread of this process."""

    def __init__(self, *, port: int | None = None) -> None:
        self._port = port
        self._server: ThreadedMotoServer | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("MotoServer is not started")
        return self._port

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def is_running(self) -> bool:
        return self._server is not None

    def start(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            return
        # werkzeug logs every request at INFO unless its logger is configured; keep it quiet.
        werkzeug_log = logging.getLogger("werkzeug")
        if werkzeug_log.level == logging.NOTSET:
            werkzeug_log.setLevel(logging.WARNING)
        if self._port is None:
            self._port = _free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._port, verbose=False)
        server.start()
        self._server = server
        deadline = time.monotonic() + timeout
        while True:
            try:
                _request(self.endpoint_url, "GET", "/moto-api/", timeout=1.0)
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto server did not answer on {self._port}") from exc
                time.sleep(0.05)
        _IN_PROCESS[self.endpoint_url] = self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            _IN_PROCESS.pop(self.endpoint_url, None)
            server.stop()

    def reset(self) -> None:
        """Forget every resource (of every in-process moto server: they share one state)."""
        # Generous: on a loaded machine the server may still be answering the last test.
        status = _request(self.endpoint_url, "POST", "/moto-api/reset", timeout=30.0)
        if status != 200:
            raise RuntimeError(f"moto reset answered HTTP {status}")

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@dataclass(frozen=True)
class DhanamWorld:
    region: str
    account_id: str
    endpoint_url: str
    image_digests: Mapping[tuple[str, str], str]  # (repository, tag) -> sha256:...
    repository_uris: Mapping[str, str]
    task_definition_arns: Mapping[tuple[str, int], str]  # (family, revision) -> ARN
    topic_arn: str
    alarm_names: tuple[str, ...]
    cluster_names: tuple[str, ...]
    service_names: tuple[str, ...]
    db_instance_identifier: str
    subnet_ids: tuple[str, ...]
    security_group_id: str

    def image(self, repository: str, tag: str) -> str:
        return f"{self.repository_uris[repository]}:{tag}"


def _client(service: str, endpoint_url: str, region: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint_url,
        region_name=region,
        **_CREDENTIALS,
    )


def _manifest(repository: str, tag: str) -> str:
    def digest(text: str) -> str:
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 1469,
                "digest": digest(f"config {repository} {tag}"),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 3 * 1024 * 1024,
                    "digest": digest(f"layer {repository} {tag}"),
                }
            ],
        },
        separators=(",", ":"),
    )


def _container(family: str, image: str, region: str) -> dict[str, Any]:
    name, port, cpu, memory = _CONTAINERS[family]
    env = [{"name": "PORT", "value": str(port)}, {"name": "LOG_LEVEL", "value": "info"}]
    if family == "dhanam-api":
        env.append({"name": "NODE_ENV", "value": "production"})
    else:
        env.append({"name": "API_URL", "value": "http://dhanam-api.dhanam.internal:3000"})
    return {
        "name": name,
        "image": image,
        "essential": True,
        # The container's share (all of the task's): moto's RunTask needs container-level sizes.
        "cpu": int(cpu),
        "memory": int(memory),
        "portMappings": [{"containerPort": port, "hostPort": port, "protocol": "tcp"}],
        "environment": env,
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": f"/ecs/{family}",
                "awslogs-region": region,
                "awslogs-stream-prefix": name,
            },
        },
        "healthCheck": {
            "command": ["CMD-SHELL", f"curl -f http://localhost:{port}/health || exit 1"],
            "interval": 30,
            "timeout": 5,
            "retries": 3,
            "startPeriod": 60,
        },
    }


def _already_seeded(ecr: Any) -> bool:
    repos = ecr.describe_repositories()["repositories"]
    return any(r["repositoryName"] in SERVICES for r in repos)


def seed_dhanam_world(endpoint_url: str, region: str = "us-east-1") -> DhanamWorld:
    """Create the Dhanam topology (README.md, "The sandbox") on an empty moto server.

    Raises ``RuntimeError`` if the world is already there (reset the server first). When the
    server runs in this process the services are made to look rolled out (see module doc).
    """

    def client(name: str) -> Any:
        return _client(name, endpoint_url, region)

    ecr, ecs, iam, ec2 = client("ecr"), client("ecs"), client("iam"), client("ec2")
    if _already_seeded(ecr):
        raise RuntimeError("the Dhanam world is already seeded here; reset the server first")
    account_id: str = client("sts").get_caller_identity()["Account"]

    digests: dict[tuple[str, str], str] = {}
    uris: dict[str, str] = {}
    for repo in SERVICES:
        created = ecr.create_repository(
            repositoryName=repo, tags=[{"Key": "app", "Value": "dhanam"}]
        )["repository"]
        uris[repo] = created["repositoryUri"]
        for tag in IMAGE_TAGS:
            manifest = _manifest(repo, tag)
            digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
            image = ecr.put_image(
                repositoryName=repo, imageManifest=manifest, imageTag=tag, imageDigest=digest
            )["image"]
            digests[(repo, tag)] = image["imageId"]["imageDigest"]

    roles = {
        name: iam.create_role(RoleName=name, AssumeRolePolicyDocument=_TRUST)["Role"]["Arn"]
        for name in ("dhanam-ecs-execution", "dhanam-api-task")
    }

    task_defs: dict[tuple[str, int], str] = {}
    for family in SERVICES:
        _, _, cpu, memory = _CONTAINERS[family]
        for revision, tag in REVISION_TAGS.items():
            registered = ecs.register_task_definition(
                family=family,
                containerDefinitions=[_container(family, f"{uris[family]}:{tag}", region)],
                requiresCompatibilities=["FARGATE"],
                networkMode="awsvpc",
                cpu=cpu,
                memory=memory,
                executionRoleArn=roles["dhanam-ecs-execution"],
                taskRoleArn=roles["dhanam-api-task"],
                runtimePlatform={"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
                tags=[{"key": "app", "value": "dhanam"}, {"key": "image-tag", "value": tag}],
            )["taskDefinition"]
            if registered["revision"] != revision:
                raise RuntimeError(f"{family} registered as revision {registered['revision']}")
            task_defs[(family, revision)] = registered["taskDefinitionArn"]

    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    # As AWS's default VPCs: tasks' network interfaces get private DNS names (moto's RunTask
    # with awsvpc reads one and fails without it).
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    subnet_ids = tuple(
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=f"{region}{zone}")[
            "Subnet"
        ]["SubnetId"]
        for cidr, zone in (("10.20.1.0/24", "a"), ("10.20.2.0/24", "b"))
    )
    sg_id: str = ec2.create_security_group(
        GroupName="dhanam-services", Description="Dhanam ECS services", VpcId=vpc_id
    )["GroupId"]

    autoscaling = client("application-autoscaling")
    for cluster in CLUSTERS:
        ecs.create_cluster(
            clusterName=cluster,
            capacityProviders=["FARGATE", "FARGATE_SPOT"],
            tags=[{"key": "app", "value": "dhanam"}],
        )
        for service in SERVICES:
            ecs.create_service(
                cluster=cluster,
                serviceName=service,
                taskDefinition=task_defs[(service, 3)],
                desiredCount=2,
                launchType="FARGATE",
                platformVersion="LATEST",
                networkConfiguration={
                    "awsvpcConfiguration": {
                        "subnets": list(subnet_ids),
                        "securityGroups": [sg_id],
                        "assignPublicIp": "DISABLED",
                    }
                },
                propagateTags="SERVICE",
                tags=[{"key": "app", "value": "dhanam"}],
            )
            # moto drops deploymentConfiguration on create but keeps it on update.
            ecs.update_service(
                cluster=cluster,
                service=service,
                deploymentConfiguration={
                    "deploymentCircuitBreaker": {"enable": True, "rollback": True},
                    "maximumPercent": 200,
                    "minimumHealthyPercent": 100,
                },
            )
            autoscaling.register_scalable_target(
                ServiceNamespace="ecs",
                ResourceId=f"service/{cluster}/{service}",
                ScalableDimension="ecs:service:DesiredCount",
                MinCapacity=2,
                MaxCapacity=_MAX_TASKS[service],
            )
            if endpoint_url in _IN_PROCESS:
                complete_rollouts(endpoint_url, region, cluster, service)

    topic_arn: str = client("sns").create_topic(Name=TOPIC_NAME)["TopicArn"]
    cloudwatch = client("cloudwatch")
    common: dict[str, Any] = {
        "Namespace": "AWS/ApplicationELB",
        "Period": 300,
        "ComparisonOperator": "GreaterThanThreshold",
        "Dimensions": [{"Name": "LoadBalancer", "Value": _ALB}],
        "AlarmActions": [topic_arn],
        "OKActions": [topic_arn],
        "TreatMissingData": "notBreaching",
    }
    cloudwatch.put_metric_alarm(
        AlarmName=ALARM_NAMES[0],
        AlarmDescription="dhanam-api is returning 5xx errors",
        MetricName="HTTPCode_Target_5XX_Count",
        Statistic="Sum",
        EvaluationPeriods=2,
        Threshold=5.0,
        **common,
    )
    cloudwatch.put_metric_alarm(
        AlarmName=ALARM_NAMES[1],
        AlarmDescription="dhanam-api responses are slower than 2 s",
        MetricName="TargetResponseTime",
        Statistic="Average",
        EvaluationPeriods=3,
        Threshold=2.0,
        Unit="Seconds",
        **common,
    )
    for name in ALARM_NAMES:
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="Sandbox seeded")

    client("rds").create_db_instance(
        DBInstanceIdentifier=DB_INSTANCE,
        DBInstanceClass="db.t3.medium",
        Engine="postgres",
        EngineVersion="15.4",
        AllocatedStorage=100,
        MasterUsername="dhanam",
        MasterUserPassword="sandbox-password-not-secret",
        BackupRetentionPeriod=7,
        MultiAZ=True,
        StorageEncrypted=True,
        Tags=[{"Key": "app", "Value": "dhanam"}],
    )
    images = {family: f"{uris[family]}:{REVISION_TAGS[3]}" for family in SERVICES}
    seed_dr_world(endpoint_url, account_id, region, DB_INSTANCE, images, credentials=_CREDENTIALS)
    seed_logs(endpoint_url, region, credentials=_CREDENTIALS)  # sandbox/aws_logs.py
    return DhanamWorld(
        region=region,
        account_id=account_id,
        endpoint_url=endpoint_url,
        image_digests=digests,
        repository_uris=uris,
        task_definition_arns=task_defs,
        topic_arn=topic_arn,
        alarm_names=ALARM_NAMES,
        cluster_names=CLUSTERS,
        service_names=SERVICES,
        db_instance_identifier=DB_INSTANCE,
        subnet_ids=subnet_ids,
        security_group_id=sg_id,
    )


def set_alarm_state(
    endpoint_url: str, region: str, alarm_name: str, state: str, reason: str
) -> dict[str, Any]:
    """Move an alarm to ``state`` (OK, ALARM, INSUFFICIENT_DATA); return it as described after.

    An unknown alarm raises botocore's ClientError with code ResourceNotFound (as AWS does).
    """
    cloudwatch = _client("cloudwatch", endpoint_url, region)
    cloudwatch.set_alarm_state(AlarmName=alarm_name, StateValue=state, StateReason=reason)
    alarms = cloudwatch.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"]
    if not alarms:
        raise KeyError(f"no metric alarm named {alarm_name!r}")
    return dict(alarms[0])


def complete_rollouts(endpoint_url: str, region: str, cluster: str, service: str) -> None:
    """Make ``service`` look rolled out: one PRIMARY deployment of its current task definition,
    COMPLETED, running = desired, pending 0 (service and deployment alike; the service's
    taskDefinition is normalised to an ARN as ECS reports it).

    Only for a ``MotoServer`` of this process: it edits moto's backend in memory. Any other
    endpoint raises ``RuntimeError`` (moto has no API for it).
    """
    if endpoint_url not in _IN_PROCESS:
        raise RuntimeError(
            f"{endpoint_url} is not a moto server of this process; rollouts cannot be completed"
        )
    from moto.backends import get_backend  # noqa: PLC0415 - moto internals, only here
    from moto.core.utils import utcnow  # noqa: PLC0415

    account_id = _client("sts", endpoint_url, region).get_caller_identity()["Account"]
    backend = get_backend("ecs")[account_id][region]
    svc = backend.services.get(f"{cluster}:{service}")
    if svc is None:
        raise KeyError(f"no service {service!r} in cluster {cluster!r}")
    task_definition = backend.describe_task_definition(str(svc.task_definition)).arn
    svc.task_definition = task_definition
    svc.running_count, svc.pending_count = svc.desired_count, 0
    now = utcnow()
    old = svc.deployments[0] if svc.deployments else {}
    deployment = dict(old)
    deployment.update(
        {
            "status": "PRIMARY",
            "taskDefinition": task_definition,
            "desiredCount": svc.desired_count,
            "runningCount": svc.desired_count,
            "pendingCount": 0,
            "failedTasks": 0,
            "rolloutState": "COMPLETED",
            "updatedAt": now,
        }
    )
    deployment.setdefault("id", f"ecs-svc/{int(now.timestamp() * 1000)}")
    deployment.setdefault("createdAt", now)
    deployment["rolloutStateReason"] = f"ECS deployment {deployment['id']} completed."
    svc.deployments = [deployment]
