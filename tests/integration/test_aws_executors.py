"""AWS calls on their own bounded thread pools (integrations/aws/executors.py), on moto.

The read pool saturated by slow DescribeAlarms calls (a botocore before-call hook that blocks)
must not delay an approved change: UpdateService runs on the mutation pool and completes
promptly. A hung region (every call to us-east-1 blocks, as in an outage of the primary) fills
its own pools only: reads and changes in us-west-2 and reads of Route 53 (global) still answer
(issue 16, review finding C2). Context variables reach the thread; the checkpoint runs on the
loop first."""

from __future__ import annotations

import asyncio
import functools
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
from integrations.aws.executors import (
    GLOBAL,
    MAX_REGIONS,
    MUTATION_WORKERS,
    OTHER,
    READ_WORKERS,
    AwsExecutors,
    region_of,
)
from integrations.aws.gateway import AwsGateway
from integrations.aws.metrics import CloudWatchReader
from sandbox.aws_world import DhanamWorld
from sandbox.dr_world import DR_CLUSTER, DR_REGION, ZONE_ID, ZONE_NAME

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
    """A before-call hook: DescribeAlarms (or `operations`) blocks until released (as a stuck
    call would)."""

    def __init__(self, operations: frozenset[str] = frozenset({"DescribeAlarms"})) -> None:
        self.operations = operations
        self.release = threading.Event()
        self.started = 0
        self._lock = threading.Lock()

    def __call__(self, model: Any, **_: Any) -> None:
        if model.name in self.operations:
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
        ("DescribeServices", "aws-read-us-east-1", "request-42"),
        ("UpdateService", "aws-mutation-us-east-1", "request-42"),
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
    assert all(name.startswith(f"aws-read-{OTHER}_") for name in built_on)  # no client: no region
    assert executors.current() is made.executors
    warmed = made.executors.pool(mutation=False, region=None)
    made.close()
    assert executors.current() is not made.executors
    with pytest.raises(RuntimeError):
        warmed.submit(print)
    with pytest.raises(RuntimeError):
        made.executors.pool(mutation=False, region=REGION)  # no new pool after shutdown either


def test_the_default_sizes_and_the_bound_on_regions() -> None:
    assert (READ_WORKERS, MUTATION_WORKERS, MAX_REGIONS) == (8, 4, 8)
    pools = AwsExecutors()
    assert pools.pool(mutation=False, region=REGION)._max_workers == 8
    assert pools.pool(mutation=True, region=REGION)._max_workers == 4
    pools.shutdown()
    small = AwsExecutors(reads=1, mutations=1, max_regions=2)
    east = small.pool(mutation=False, region=REGION)
    west = small.pool(mutation=False, region=DR_REGION)
    other = small.pool(mutation=False, region=None)
    assert len({id(east), id(west), id(other)}) == 3
    assert small.pool(mutation=False, region=REGION) is east  # created once
    assert small.pool(mutation=True, region=REGION) is not east  # mutations apart
    # A third region gets no pools of its own: it shares those of the calls of no region.
    assert small.pool(mutation=False, region="eu-west-1") is other
    assert small.pool(mutation=True, region="eu-west-1") is small.pool(mutation=True, region=None)
    small.shutdown()


def test_region_of_finds_the_client_a_call_uses(aws_world: DhanamWorld) -> None:
    clients = AwsClients(aws_world.endpoint_url, REGION)
    ecs = clients.client("ecs", DR_REGION)
    cloudwatch = clients.client("cloudwatch", DR_REGION)

    def collect() -> object:  # a gateway's paginating closure
        return cloudwatch.get_paginator("describe_alarms")

    assert region_of(ecs.describe_services) == DR_REGION
    assert region_of(collect) == DR_REGION
    assert region_of(functools.partial(ecs.list_services, cluster=CLUSTER)) == DR_REGION
    assert region_of(clients.client("route53").list_hosted_zones) == GLOBAL
    assert region_of(clients.client("cloudfront", REGION).list_distributions) == GLOBAL
    assert region_of(lambda: clients.warm([REGION])) is None


async def test_a_hung_region_does_not_starve_the_others(aws_world: DhanamWorld) -> None:
    """us-east-1 hangs: every ECS read and change there blocks. The callers give up (as a status
    under its budget does) but the threads stay; reads of us-west-2 and of Route 53, and a
    change in us-west-2, still run at once. Before pools per region they queued behind the stuck
    threads of the one shared pool and timed out."""
    made = AwsClients(aws_world.endpoint_url, REGION, AwsExecutors(reads=2, mutations=1))
    await made.start([REGION, DR_REGION])
    hung = SlowReads(frozenset({"DescribeServices", "UpdateService", "DescribeAlarms"}))
    east = made.client("ecs", REGION)
    east.meta.events.register("before-call", hung)
    made.client("cloudwatch", REGION).meta.events.register("before-call", hung)
    west = made.client("ecs", DR_REGION)
    try:
        for _ in range(5):  # more abandoned reads than the region has read threads
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(
                    call_aws(
                        "DescribeServices", east.describe_services, cluster=CLUSTER, services=["x"]
                    ),
                    0.1,
                )
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(
                call_aws("UpdateService", east.update_service, cluster=CLUSTER, service="x"), 0.1
            )
        assert hung.started == 3  # us-east-1's 2 read threads and its 1 mutation thread stuck

        started = time.perf_counter()
        services = await asyncio.wait_for(
            call_aws(
                "DescribeServices",
                west.describe_services,
                cluster=DR_CLUSTER,
                services=["dhanam-api"],
            ),
            PROMPT,
        )
        records = await asyncio.wait_for(
            call_aws(
                "ListResourceRecordSets",
                made.client("route53").list_resource_record_sets,
                HostedZoneId=ZONE_ID,
            ),
            PROMPT,
        )
        # A gateway's paginating closure is placed by the client it captured, too.
        alarms = await asyncio.wait_for(
            CloudWatchReader(made).describe_alarms(DR_REGION, ["dhanam-dr-none"]), PROMPT
        )
        updated = await asyncio.wait_for(
            call_aws(
                "UpdateService",
                west.update_service,
                cluster=DR_CLUSTER,
                service="dhanam-api",
                desiredCount=0,
            ),
            PROMPT,
        )
        took = time.perf_counter() - started
        print(f"us-west-2 and Route 53 while us-east-1 hangs: {took * 1000:.0f} ms")
        assert [s["serviceName"] for s in services["services"]] == ["dhanam-api"]
        assert any(r["Name"] == f"{ZONE_NAME}." for r in records["ResourceRecordSets"])
        assert alarms == []
        assert updated["service"]["serviceName"] == "dhanam-api"
        assert hung.started == 3  # the abandoned us-east-1 calls still queued never ran
    finally:
        hung.release.set()
        made.close()
