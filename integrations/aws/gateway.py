"""The bot's AWS operations (ECS, ECR, CloudWatch), async and typed.

Every call runs in a worker thread (`asyncio.to_thread`) and every failure is an `AwsError`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from integrations.aws.clients import AwsClients
from integrations.aws.errors import AwsError, call_aws
from integrations.aws.images import ecr_repository, natural_key, parse_image
from integrations.aws.models import AlarmState, ResolvedImage, ServiceState, service_state

# What AWS sets on a task definition itself; never copied into a new revision.
AWS_MANAGED_TASK_DEFINITION_FIELDS = frozenset(
    {
        "taskDefinitionArn",
        "revision",
        "status",
        "registeredAt",
        "registeredBy",
        "requiresAttributes",
        "compatibilities",
        "deregisteredAt",
        "deleteRequestedAt",
    }
)
KNOWN_TAGS_SHOWN = 10
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_ALARM_BATCH = 100


class AwsGateway:
    def __init__(self, clients: AwsClients) -> None:
        self.clients = clients

    # -- ECS ---------------------------------------------------------------------------------
    async def describe_service(self, region: str, cluster: str, service: str) -> ServiceState:
        ecs = self.clients.client("ecs", region)
        response = await call_aws(
            "DescribeServices", ecs.describe_services, cluster=cluster, services=[service]
        )
        found = [s for s in response.get("services", []) if s.get("status") != "INACTIVE"]
        if not found:
            message = f'ECS service "{service}" not found in cluster "{cluster}" ({region})'
            raise AwsError(
                operation="DescribeServices",
                code="ServiceNotFoundException",
                message=message,
                user_message=message,
            )
        return service_state(region, cluster, found[0])

    async def describe_task_definition(self, region: str, task_definition: str) -> dict[str, Any]:
        """The `taskDefinition` dict (by ARN or family:revision), with its `tags` added."""
        ecs = self.clients.client("ecs", region)
        response = await call_aws(
            "DescribeTaskDefinition",
            ecs.describe_task_definition,
            taskDefinition=task_definition,
            include=["TAGS"],
        )
        result: dict[str, Any] = dict(response["taskDefinition"])
        result["tags"] = [dict(tag) for tag in response.get("tags", [])]
        return result

    def register_fields(self, region: str) -> frozenset[str]:
        """What RegisterTaskDefinition accepts, from botocore's service model (so a field AWS
        adds later is copied as soon as botocore knows it)."""
        model = self.clients.client("ecs", region).meta.service_model
        shape = model.operation_model("RegisterTaskDefinition").input_shape
        assert shape is not None
        return frozenset(shape.members)

    async def register_task_definition_like(
        self,
        region: str,
        source: Mapping[str, Any],
        tags: list[dict[str, str]] | None,
        container: str,
        image: str,
    ) -> str:
        """Register a new revision of `source`'s family that differs only in `container`'s image.

        Every field RegisterTaskDefinition accepts is copied from `source`; `tags` replaces the
        source's tags when given (None: copy them too). Returns the new revision's ARN.
        """
        containers = [c.get("name") for c in source.get("containerDefinitions", [])]
        if container not in containers:
            family = f"{source.get('family')}:{source.get('revision')}"
            present = ", ".join(str(c) for c in containers) or "none"
            message = f'task definition {family} has no container "{container}" — it has: {present}'
            raise AwsError(
                operation="RegisterTaskDefinition",
                code="ContainerNotFound",
                message=message,
                user_message=message,
            )
        accepted = self.register_fields(region)
        kwargs: dict[str, Any] = {
            key: copy.deepcopy(value)
            for key, value in source.items()
            if key in accepted and value is not None
        }
        for definition in kwargs["containerDefinitions"]:
            if definition.get("name") == container:
                definition["image"] = image
        if tags is not None:
            kwargs["tags"] = [dict(tag) for tag in tags]
        if not kwargs.get("tags"):
            kwargs.pop("tags", None)
        ecs = self.clients.client("ecs", region)
        response = await call_aws("RegisterTaskDefinition", ecs.register_task_definition, **kwargs)
        return response["taskDefinition"]["taskDefinitionArn"]

    async def update_service(
        self,
        region: str,
        cluster: str,
        service: str,
        task_definition_arn: str,
        desired: int | None = None,
    ) -> ServiceState:
        ecs = self.clients.client("ecs", region)
        kwargs: dict[str, Any] = {
            "cluster": cluster,
            "service": service,
            "taskDefinition": task_definition_arn,
        }
        if desired is not None:
            kwargs["desiredCount"] = desired
        response = await call_aws("UpdateService", ecs.update_service, **kwargs)
        return service_state(region, cluster, response["service"])

    async def list_task_definition_revisions(self, region: str, family: str) -> list[int]:
        """ACTIVE revisions of exactly `family` (not of families it is a prefix of), ascending."""
        ecs = self.clients.client("ecs", region)

        def collect() -> list[str]:
            pages = ecs.get_paginator("list_task_definitions").paginate(
                familyPrefix=family, status="ACTIVE"
            )
            return [arn for page in pages for arn in page.get("taskDefinitionArns", [])]

        revisions = []
        for arn in await call_aws("ListTaskDefinitions", collect):
            name, _, revision = arn.rpartition("/")[2].rpartition(":")
            if name == family and revision.isdigit():
                revisions.append(int(revision))
        return sorted(revisions)

    async def find_tagged_revision(
        self, region: str, family: str, key: str, value: str, *, newest: int = 10
    ) -> dict[str, Any] | None:
        """The newest of `family`'s `newest` newest ACTIVE revisions that carries the tag
        `key=value` (as `describe_task_definition` returns it, tags included), else None.

        One ListTaskDefinitions page (sort=DESC, maxResults=`newest`), then one
        DescribeTaskDefinition per revision; the list is sorted again here, since not every
        endpoint honours `sort` (moto returns revisions ascending)."""
        ecs = self.clients.client("ecs", region)
        response = await call_aws(
            "ListTaskDefinitions",
            ecs.list_task_definitions,
            familyPrefix=family,
            status="ACTIVE",
            sort="DESC",
            maxResults=newest,
        )
        revisions: list[tuple[int, str]] = []
        for arn in response.get("taskDefinitionArns", []):
            name, _, revision = arn.rpartition("/")[2].rpartition(":")
            if name == family and revision.isdigit():
                revisions.append((int(revision), arn))
        for _, arn in sorted(revisions, reverse=True)[:newest]:
            described = await self.describe_task_definition(region, arn)
            tags = described.get("tags", [])
            if any(t.get("key") == key and t.get("value") == value for t in tags):
                return described
        return None

    # -- ECR ---------------------------------------------------------------------------------
    async def resolve_image(self, region: str, image_uri: str, tag: str) -> ResolvedImage:
        """`image_uri`'s repository at `tag`, with the digest ECR has for it.

        Non-ECR registries cannot be asked: the digest is None and the image is pinned by tag.
        An unknown tag raises AwsError naming the repository's newest tags.
        """
        if not _TAG.match(tag):
            raise AwsError(
                operation="DescribeImages",
                code="InvalidTag",
                message=tag,
                user_message=f'invalid image tag "{tag}": letters, digits, "_", "." and "-" only',
            )
        repository_uri = parse_image(image_uri).repository_uri
        with_tag = f"{repository_uri}:{tag}"
        repo = ecr_repository(repository_uri)
        if repo is None:
            return ResolvedImage(repository_uri, tag, None, with_tag, with_tag)
        ecr = self.clients.client("ecr", repo.region or region)
        try:
            response = await call_aws(
                "DescribeImages",
                ecr.describe_images,
                registryId=repo.account_id,
                repositoryName=repo.name,
                imageIds=[{"imageTag": tag}],
            )
        except AwsError as exc:
            if exc.code != "ImageNotFoundException":
                raise
            known = await self._newest_tags(repo.region or region, repo.account_id, repo.name)
            listed = ", ".join(known) if known else "none"
            raise AwsError(
                operation=exc.operation,
                code=exc.code,
                message=exc.message,
                user_message=f'unknown tag "{tag}" for {repo.name} — known: {listed}',
            ) from exc
        digest = response["imageDetails"][0]["imageDigest"]
        return ResolvedImage(repository_uri, tag, digest, with_tag, f"{repository_uri}@{digest}")

    async def _newest_tags(self, region: str, registry_id: str, repository: str) -> list[str]:
        ecr = self.clients.client("ecr", region)

        def collect() -> list[tuple[datetime, str]]:
            pages = ecr.get_paginator("describe_images").paginate(
                registryId=registry_id, repositoryName=repository, filter={"tagStatus": "TAGGED"}
            )
            epoch = datetime.min.replace(tzinfo=UTC)
            return [
                (detail.get("imagePushedAt", epoch), image_tag)
                for page in pages
                for detail in page.get("imageDetails", [])
                for image_tag in detail.get("imageTags", [])
            ]

        try:
            tagged = await call_aws("DescribeImages", collect)
        except AwsError:
            return []
        tagged.sort(key=lambda item: (item[0], natural_key(item[1])), reverse=True)
        return [image_tag for _, image_tag in tagged[:KNOWN_TAGS_SHOWN]]

    # -- CloudWatch --------------------------------------------------------------------------
    async def alarms_in_alarm(self, region: str, names: list[str]) -> list[AlarmState]:
        """Those of `names` (metric or composite alarms) now in ALARM, in the order given."""
        if not names:
            return []
        cloudwatch = self.clients.client("cloudwatch", region)

        def collect() -> list[AlarmState]:
            found: list[AlarmState] = []
            paginator = cloudwatch.get_paginator("describe_alarms")
            for start in range(0, len(names), _ALARM_BATCH):
                pages = paginator.paginate(
                    AlarmNames=names[start : start + _ALARM_BATCH],
                    AlarmTypes=["MetricAlarm", "CompositeAlarm"],
                    StateValue="ALARM",
                )
                for page in pages:
                    raw = [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]
                    found.extend(
                        AlarmState(
                            name=alarm["AlarmName"],
                            state=alarm["StateValue"],
                            reason=alarm.get("StateReason", ""),
                            updated=alarm.get("StateUpdatedTimestamp"),
                        )
                        for alarm in raw
                    )
            return found

        alarms = {a.name: a for a in await call_aws("DescribeAlarms", collect)}
        # StateValue filters server-side on AWS; moto ignores it, so filter again.
        return [
            alarms[n] for n in dict.fromkeys(names) if n in alarms and alarms[n].state == "ALARM"
        ]
