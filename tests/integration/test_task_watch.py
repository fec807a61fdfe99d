"""TaskWatch against moto: a chatty task's tail ends at its last line, secrets are masked before
they are kept, and a task the bot already stopped at its timeout is not stopped again."""

from __future__ import annotations

from typing import Any

import boto3

from commands.operations.tasks import TIMEOUT_REASON, TaskWatch
from integrations.aws.clients import AwsClients
from integrations.aws.ecs_tasks import EcsTasks
from sandbox.aws_world import DhanamWorld

GROUP = "/ecs/dhanam-api"


def client(world: DhanamWorld, name: str) -> Any:
    return boto3.client(name, region_name=world.region, endpoint_url=world.endpoint_url)


def start_task(world: DhanamWorld) -> str:
    ecs = client(world, "ecs")
    svc = ecs.describe_services(cluster="dhanam-production", services=["dhanam-api"])
    service = svc["services"][0]
    started = ecs.run_task(
        cluster="dhanam-production",
        taskDefinition=service["taskDefinition"],
        startedBy="dhanam:test",
        launchType="FARGATE",
        networkConfiguration=service["networkConfiguration"],
    )
    return str(started["tasks"][0]["taskArn"])


def watch_of(world: DhanamWorld, arn: str) -> TaskWatch:
    return TaskWatch(
        tasks=EcsTasks(AwsClients(world.endpoint_url, world.region)),
        region=world.region,
        cluster="dhanam-production",
        arn=arn,
        container="api",
        logs=(GROUP, world.region, "api"),
    )


async def test_a_chatty_tasks_tail_ends_at_its_last_line_masked(aws_world: DhanamWorld) -> None:
    arn = start_task(aws_world)
    stream = f"api/api/{arn.rsplit('/', 1)[-1]}"
    logs = client(aws_world, "logs")
    groups = logs.describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"]
    if not any(g["logGroupName"] == GROUP for g in groups):
        logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    lines = [f"migrating {i:04d}" for i in range(2400)]
    lines[20] = "connecting to postgres://dhanam:S3cretPassw0rd@db.prod:5432/dhanam"
    lines.append("ERROR: relation users already exists")

    def put(batch: list[str], first: int) -> None:
        logs.put_log_events(
            logGroupName=GROUP,
            logStreamName=stream,
            logEvents=[
                {"timestamp": 1_796_000_000_000 + first + i, "message": line}
                for i, line in enumerate(batch)
            ],
        )

    put(lines[:10], 0)
    watch = watch_of(aws_world, arn)
    await watch.read_log()  # the first poll: 10 lines, and a token to go on from
    assert watch.last_lines()[-1] == "migrating 0009"
    for start in range(10, len(lines), 1000):  # then the task logs 2,391 lines before a poll
        put(lines[start : start + 1000], start)
    await watch.read_log()
    assert watch.last_lines()[-1] == "ERROR: relation users already exists"
    assert all("S3cretPassw0rd" not in line for line in watch.tail)


async def test_a_task_stopped_at_its_timeout_is_not_stopped_again(aws_world: DhanamWorld) -> None:
    arn = start_task(aws_world)
    ecs = client(aws_world, "ecs")
    ecs.stop_task(cluster="dhanam-production", task=arn, reason=f"{TIMEOUT_REASON} after 15 min")
    watch = watch_of(aws_world, arn)  # another replica's, after a takeover
    await watch.poll()
    assert watch.stop_sent  # so the verdict is "timed out" and no second StopTask goes out
