"""Scenario (issue 11, point 2): a plan's fingerprint covers what the action depends on and
nothing else. Autoscaling moving the desired count between request and approval (an ECS
update-service with only desiredCount, by someone else) does not void a deploy or a rollback;
another task definition running meanwhile, or a circuit breaker switched off, does. Through
signed requests and clicks against moto, the Slack emulator and the session's redis-server."""

from __future__ import annotations

from typing import Any

import boto3

from sandbox.world import SandboxWorld, buttons_of

REGION = "us-east-1"
CLUSTER = "dhanam-production"
RESOURCE = "service/dhanam-production/dhanam-api"


def ecs(world: SandboxWorld) -> Any:
    return boto3.client("ecs", region_name=REGION, endpoint_url=world.aws_endpoint_url)


def api_service(world: SandboxWorld) -> dict[str, Any]:
    return dict(
        ecs(world).describe_services(cluster=CLUSTER, services=["dhanam-api"])["services"][0]
    )


def running_revision(world: SandboxWorld) -> str:
    return str(api_service(world)["taskDefinition"]).rpartition("/")[2]


def revision_count(world: SandboxWorld) -> int:
    return len(ecs(world).list_task_definitions(familyPrefix="dhanam-api")["taskDefinitionArns"])


def autoscaling_sets_desired(world: SandboxWorld, desired: int) -> None:
    """What Application Auto Scaling does: UpdateService with only desiredCount."""
    ecs(world).update_service(cluster=CLUSTER, service="dhanam-api", desiredCount=desired)


def newest_card(world: SandboxWorld, channel: str = "C0DEPLOYS") -> Any:
    cards = [
        m for m in world.slack.messages(channel) if buttons_of(m.blocks or []) and not m.is_reply
    ]
    return cards[-1].snapshot()


def card_now(world: SandboxWorld, card: Any, channel: str = "C0DEPLOYS") -> str:
    return str(next(m for m in world.slack.messages(channel) if m.ts == card.ts).blocks)


async def request(world: SandboxWorld, text: str) -> Any:
    await world.slash(text, user="alice")
    await world.settle()
    assert "Approval requested" in world.slack.ephemerals("U0ALICE")[-1].text
    return newest_card(world)


async def approve(world: SandboxWorld, card: Any) -> None:
    approve_button = next(b for b in buttons_of(card.blocks) if b.label == "Approve")
    await world.click(card, approve_button, user="bob")
    await world.settle()


# -- the task count is not an input --------------------------------------------------------
async def test_desired_count_moved_by_autoscaling_does_not_void_the_deploy(
    aws_bot: SandboxWorld,
) -> None:
    card = await request(aws_bot, "deploy api production v1.3.0")
    assert "desired count" in str(card.blocks)  # still shown on the card, as a fact
    autoscaling_sets_desired(aws_bot, 3)

    await approve(aws_bot, card)
    assert running_revision(aws_bot) == "dhanam-api:4"
    assert api_service(aws_bot)["desiredCount"] == 3  # the deploy left the count alone
    final = card_now(aws_bot, card)
    assert "Rolling out" in final or "*Rollout:*" in final  # ran; its rollout is followed
    assert "plan changed" not in final


async def test_desired_count_moved_by_autoscaling_does_not_void_the_rollback(
    aws_bot: SandboxWorld,
) -> None:
    card = await request(aws_bot, "rollback api production")
    assert "dhanam-api:3 → dhanam-api:2" in str(card.blocks)
    autoscaling_sets_desired(aws_bot, 3)

    await approve(aws_bot, card)
    assert running_revision(aws_bot) == "dhanam-api:2"
    assert api_service(aws_bot)["desiredCount"] == 3
    final = card_now(aws_bot, card)
    assert "Rolling out" in final or "*Rollout:*" in final  # ran; its rollout is followed
    assert "plan changed" not in final


async def test_desired_count_moved_does_not_void_a_scale_of_the_bounds_only(
    aws_bot: SandboxWorld,
) -> None:
    card = await request(aws_bot, "scale api production --max 15")
    autoscaling_sets_desired(aws_bot, 3)
    await approve(aws_bot, card)
    assert "Done" in card_now(aws_bot, card)
    target = boto3.client(
        "application-autoscaling", region_name=REGION, endpoint_url=aws_bot.aws_endpoint_url
    ).describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[RESOURCE])
    assert target["ScalableTargets"][0]["MaxCapacity"] == 15


async def test_desired_count_moved_voids_a_scale_that_sets_it(aws_bot: SandboxWorld) -> None:
    """`--desired 4` was approved as "desired 2 → 4": the count it sets is an input."""
    card = await request(aws_bot, "scale api production --desired 4")
    autoscaling_sets_desired(aws_bot, 3)
    await approve(aws_bot, card)
    final = card_now(aws_bot, card)
    assert "plan changed" in final
    assert "desired: 2 → 3" in final
    assert api_service(aws_bot)["desiredCount"] == 3


# -- what the deploy depends on still voids it ---------------------------------------------
async def test_another_task_definition_running_meanwhile_voids_the_deploy(
    aws_bot: SandboxWorld,
) -> None:
    card = await request(aws_bot, "deploy api production v1.3.0")
    # Someone deploys v1.1.0 (revision 2) from the console before bob approves.
    ecs(aws_bot).update_service(
        cluster=CLUSTER, service="dhanam-api", taskDefinition="dhanam-api:2"
    )

    await approve(aws_bot, card)
    assert running_revision(aws_bot) == "dhanam-api:2"
    assert revision_count(aws_bot) == 3  # nothing registered
    final = card_now(aws_bot, card)
    assert "plan changed" in final
    assert "task_definition:" in final
    assert "images:" in final
    assert "v1.1.0" in final  # the image running now, named in the drift


async def test_another_task_definition_running_meanwhile_voids_the_rollback(
    aws_bot: SandboxWorld,
) -> None:
    card = await request(aws_bot, "rollback api production")
    assert "dhanam-api:3 → dhanam-api:2" in str(card.blocks)
    # Someone rolls back by hand first: revision 2 runs, so "the previous one" is now 1.
    ecs(aws_bot).update_service(
        cluster=CLUSTER, service="dhanam-api", taskDefinition="dhanam-api:2"
    )

    await approve(aws_bot, card)
    assert running_revision(aws_bot) == "dhanam-api:2"
    final = card_now(aws_bot, card)
    assert "plan changed" in final
    assert "task_definition:" in final
    assert "target_task_definition:" in final


async def test_circuit_breaker_switched_off_meanwhile_voids_the_deploy(
    aws_bot: SandboxWorld,
) -> None:
    card = await request(aws_bot, "deploy api production v1.3.0")
    assert "circuit breaker on, rolls back on failure" in str(card.blocks)
    ecs(aws_bot).update_service(
        cluster=CLUSTER,
        service="dhanam-api",
        deploymentConfiguration={"deploymentCircuitBreaker": {"enable": False, "rollback": False}},
    )
    breaker = api_service(aws_bot)["deploymentConfiguration"]["deploymentCircuitBreaker"]
    assert breaker == {"enable": False, "rollback": False}

    await approve(aws_bot, card)
    assert running_revision(aws_bot) == "dhanam-api:3"
    assert revision_count(aws_bot) == 3
    final = card_now(aws_bot, card)
    assert "plan changed" in final
    assert (
        "circuit_breaker: {'enable': True, 'rollback': True} → "
        "{'enable': False, 'rollback': False}" in final
    )
