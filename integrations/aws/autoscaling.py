"""Scaling an ECS service: its Application Auto Scaling target and its desired count.

Async and typed like `AwsGateway`: every boto3 call runs off the loop through `call_aws`, and
every failure is an `AwsError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from integrations.aws.clients import AwsClients
from integrations.aws.errors import call_aws
from integrations.aws.models import ServiceState, service_state

ECS_NAMESPACE = "ecs"
ECS_DESIRED_COUNT = "ecs:service:DesiredCount"


def ecs_resource_id(cluster: str, ecs_service: str) -> str:
    """Application Auto Scaling's name for an ECS service: `service/<cluster>/<service>`."""
    return f"service/{cluster}/{ecs_service}"


@dataclass(frozen=True)
class ScalableTarget:
    resource_id: str
    min_capacity: int
    max_capacity: int


class ScalingGateway:
    def __init__(self, clients: AwsClients) -> None:
        self.clients = clients

    async def scalable_target(
        self, region: str, cluster: str, ecs_service: str
    ) -> ScalableTarget | None:
        """The service's DesiredCount target, or None when it has none (not autoscaled)."""
        resource_id = ecs_resource_id(cluster, ecs_service)
        client = self.clients.client("application-autoscaling", region)
        response = await call_aws(
            "DescribeScalableTargets",
            client.describe_scalable_targets,
            ServiceNamespace=ECS_NAMESPACE,
            ResourceIds=[resource_id],
            ScalableDimension=ECS_DESIRED_COUNT,
        )
        for target in response.get("ScalableTargets", []):
            if (
                target.get("ResourceId") == resource_id
                and target.get("ScalableDimension") == ECS_DESIRED_COUNT
            ):
                return ScalableTarget(
                    resource_id=resource_id,
                    min_capacity=int(target["MinCapacity"]),
                    max_capacity=int(target["MaxCapacity"]),
                )
        return None

    async def register_scalable_target(
        self, region: str, resource_id: str, min_capacity: int, max_capacity: int
    ) -> None:
        """Set both bounds of an existing (or new) DesiredCount target."""
        client = self.clients.client("application-autoscaling", region)
        await call_aws(
            "RegisterScalableTarget",
            client.register_scalable_target,
            ServiceNamespace=ECS_NAMESPACE,
            ResourceId=resource_id,
            ScalableDimension=ECS_DESIRED_COUNT,
            MinCapacity=min_capacity,
            MaxCapacity=max_capacity,
        )

    async def set_desired_count(
        self, region: str, cluster: str, ecs_service: str, desired: int
    ) -> ServiceState:
        """UpdateService with only desiredCount: the task definition is left as it is, so this
        never starts a deployment of another revision."""
        ecs = self.clients.client("ecs", region)
        response = await call_aws(
            "UpdateService",
            ecs.update_service,
            cluster=cluster,
            service=ecs_service,
            desiredCount=desired,
        )
        return service_state(region, cluster, response["service"])
