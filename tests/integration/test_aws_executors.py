"""AWS calls on their own bounded thread pools (integrations/aws/executors.py), on moto.

The read pool saturated by slow DescribeAlarms calls (a botocore before-call hook that blocks)
must not delay an approved change: UpdateService runs on the mutation pool and completes
promptly. Context variables reach the thread; the checkpoint runs on the loop first."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import Any

import pytest

from core.guard import guarded
from integrations.aws import executors
from integrations.aws.clients import SERVICES, AwsClients
from integrations.aws.errors import call_aws
from integrations.aws.executors import MUTATION_WORKERS, READ_WORKERS, AwsExecutors
from integrations.aws.gateway import AwsGateway
from integrations.aws.metrics import CloudWatchReader
from sandbox.aws_world import DhanamWorld

REGION = "us-east-1"
CLUSTER = "dhanam-production"
PROMPT = 2.0  # seconds an UpdateService on moto may take while the reads are stuck


@pytest.fixture
async def clients(aws_world: DhanamWorld) -> AsyncIterator[AwsClients]:
    made = AwsClients(aws_world.endpoint_url, REGION, AwsExecutors(reads=3, mutations=2))
    await made.start([REGION])
    yield made
    made.close()


class SlowReads:
    """A before-call hook: DescribeAlarms blocks until released (as a stuck read would)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = 0
        self._lock = threading.Lock()

    def __call__(self, model: Any, **_: Any) -> None:
        if model.name == "DescribeAlarms":
            with self._lock:
                self.started += 1
            self.release.wait(timeout=30)


async def test_a_mutation_completes_while_the_read_pool_is_saturated(
    aws_world: DhanamWorld,
) -> None:
    clients = AwsClients(aws_world.endpoint_url, REGION)  # the production sizes: 8 and 4
    await clients.start([REGION])
    slow = SlowReads()
    clients.client("cloudwatch", REGION).meta.events.register("before-call", slow)
    reader = CloudWatchReader(clients)
    reads = [
        asyncio.create_task(reader.describe_alarms(REGION, list(aws_world.alarm_names)))
        for _ in range(READ_WORKERS + 4)  # every read thread busy, 4 reads queued
    ]
    try:
        for _ in range(300):
            if slow.started == READ_WORKERS:
                break
            await asyncio.sleep(0.01)
        assert slow.started == READ_WORKERS  # the read pool is full: every read thread is stuck

        gateway = AwsGateway(clients)
        target = aws_world.task_definition_arns[("dhanam-api", 2)]
        started = time.perf_counter()
        state = await gateway.update_service(REGION, CLUSTER, "dhanam-api", target, desired=2)
        took = time.perf_counter() - started
        print(f"UpdateService with the read pool saturated: {took * 1000:.0f} ms")
        assert state.task_definition_arn == target
        assert took < PROMPT
        assert not any(task.done() for task in reads)  # the reads are still stuck
        assert slow.started == READ_WORKERS  # and the queued ones did not get a thread
    finally:
        slow.release.set()
    results = await asyncio.gather(*reads)
    assert len(results) == READ_WORKERS + 4
    assert slow.started == READ_WORKERS + 4
    clients.close()


async def test_a_read_that_timed_out_keeps_its_thread_until_boto3_returns(
    aws_world: DhanamWorld, clients: AwsClients
) -> None:
    slow = SlowReads()
    clients.client("cloudwatch", REGION).meta.events.register("before-call", slow)
    reader = CloudWatchReader(clients)
    for _ in range(3):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.describe_alarms(REGION, list(aws_world.alarm_names)), 0.2)
    # The callers gave up, the threads did not: a fourth read queues (capped at the pool size).
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.describe_alarms(REGION, list(aws_world.alarm_names)), 0.3)
    assert slow.started == 3
    slow.release.set()
    assert await reader.describe_alarms(REGION, list(aws_world.alarm_names)) is not None


async def test_reads_and_mutations_run_on_their_own_threads_with_the_context(
    aws_world: DhanamWorld, clients: AwsClients
) -> None:
    seen: list[tuple[str, str, str]] = []
    marker: ContextVar[str] = ContextVar("marker", default="unset")

    def hook(model: Any, **_: Any) -> None:
        seen.append((model.name, threading.current_thread().name, marker.get()))

    clients.client("ecs", REGION).meta.events.register("before-call", hook)
    checked: list[tuple[str, str]] = []

    async def check(operation: str) -> None:
        checked.append((operation, threading.current_thread().name))

    marker.set("request-42")
    ecs = clients.client("ecs", REGION)
    target = aws_world.task_definition_arns[("dhanam-api", 2)]
    with guarded(check):
        await call_aws("DescribeServices", ecs.describe_services, cluster=CLUSTER, services=["x"])
        await call_aws(
            "UpdateService",
            ecs.update_service,
            cluster=CLUSTER,
            service="dhanam-api",
            taskDefinition=target,
        )
    assert [(name, thread.split("_")[0], value) for name, thread, value in seen] == [
        ("DescribeServices", "aws-read", "request-42"),
        ("UpdateService", "aws-mutation", "request-42"),
    ]
    # The checkpoint ran on the event loop's thread, before the call, for the mutation only.
    assert checked == [("UpdateService", threading.current_thread().name)]


async def test_start_builds_the_clients_off_the_loop_and_close_shuts_the_pools(
    aws_world: DhanamWorld,
) -> None:
    built_on: list[str] = []
    made = AwsClients(aws_world.endpoint_url, "us-east-1")
    original = made.client

    def client(name: str, region: str | None = None) -> Any:
        built_on.append(threading.current_thread().name)
        return original(name, region)

    made.client = client  # type: ignore[method-assign]
    await made.start(["us-west-2", "us-east-1", "us-west-2"])
    assert made._clients.keys() == {(s, r) for s in SERVICES for r in ("us-east-1", "us-west-2")}
    assert all(name.startswith("aws-read") for name in built_on)
    assert executors.current() is made.executors
    made.close()
    assert executors.current() is not made.executors
    with pytest.raises(RuntimeError):
        made.executors.reads.submit(print)


def test_the_default_sizes() -> None:
    assert (READ_WORKERS, MUTATION_WORKERS) == (8, 4)
    pools = AwsExecutors()
    assert (pools.reads._max_workers, pools.mutations._max_workers) == (8, 4)
    pools.shutdown()
