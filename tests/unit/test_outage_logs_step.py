"""The checklist's logs step reads the log group while DescribeServices is answered, when the
service still runs the task definition it ran last (commands/outage/service_checks.py): a chain
of calls then costs one call's time. Fakes for AWS and the log reader, with a step log."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

from commands.outage.deps import OutageSources
from commands.outage.models import Verdict
from commands.outage.service_checks import logs
from core.clock import ManualClock
from integrations.aws.cloudwatch_logs import AwsLogs, LogEvent, LogSearch

NOW = datetime(2026, 12, 5, 22, 0, tzinfo=UTC)
DELAY = 0.1


def _definition(group: str) -> dict[str, Any]:
    options = {"awslogs-group": group, "awslogs-stream-prefix": "ecs"}
    return {
        "containerDefinitions": [
            {"name": "api", "logConfiguration": {"logDriver": "awslogs", "options": options}}
        ]
    }


@dataclass
class FakeAws:
    arn: str = "td/api:1"
    groups: dict[str, str] = field(default_factory=lambda: {"td/api:1": "/ecs/api-1"})
    steps: list[str] = field(default_factory=list)

    async def describe_service(self, region: str, cluster: str, service: str) -> Any:
        self.steps.append("DescribeServices asked")
        await asyncio.sleep(DELAY)
        self.steps.append("DescribeServices answered")
        return SimpleNamespace(task_definition_arn=self.arn)

    async def describe_task_definition(self, region: str, arn: str) -> dict[str, Any]:
        self.steps.append(f"DescribeTaskDefinition {arn}")
        await asyncio.sleep(DELAY)
        return _definition(self.groups[arn])


@dataclass
class FakeLogs:
    steps: list[str]

    async def newest(self, where: AwsLogs, region: str, **_: Any) -> LogSearch:
        self.steps.append(f"read {where.group}")
        await asyncio.sleep(DELAY)
        line = f'{{"level":"error","msg":"from {where.group}"}}'
        event = LogEvent(at=NOW, stream="ecs/api/1", message=line)
        return LogSearch(events=[event], pages=1, complete=True, searched_from=NOW)


def _sources(aws: FakeAws) -> OutageSources:
    env = SimpleNamespace(region="us-east-1", cluster="dhanam")
    config = SimpleNamespace(
        service_names=["api"],
        services={"api": SimpleNamespace(ecs_service="dhanam-api", container="api")},
    )
    src = SimpleNamespace(
        config=config,
        clock=ManualClock(NOW),
        aws=aws,
        logs=FakeLogs(aws.steps),
        env=env,
        limit=5.0,
        outage=SimpleNamespace(log_error_threshold=10),
        log_places={},
        log_arns={},
    )
    return cast("OutageSources", src)


async def test_the_group_is_read_while_describe_services_answers_once_its_revision_is_known() -> (
    None
):
    aws = FakeAws()
    src = _sources(aws)
    first = await logs(src)  # cold: the whole chain, one after another
    assert first.verdict is Verdict.PASS
    assert "from /ecs/api-1" in first.evidence
    assert aws.steps == [
        "DescribeServices asked",
        "DescribeServices answered",
        "DescribeTaskDefinition td/api:1",
        "read /ecs/api-1",
    ]
    aws.steps.clear()
    started = asyncio.get_running_loop().time()
    again = await logs(src)  # same revision: the read overlaps DescribeServices
    took = asyncio.get_running_loop().time() - started
    assert aws.steps[:2] == ["DescribeServices asked", "read /ecs/api-1"]
    assert not any(s.startswith("DescribeTaskDefinition") for s in aws.steps)
    assert "from /ecs/api-1" in again.evidence
    assert took < 1.8 * DELAY  # one call's time, not two


async def test_a_new_revision_logging_elsewhere_is_read_there() -> None:
    aws = FakeAws()
    src = _sources(aws)
    await logs(src)
    aws.arn, aws.groups["td/api:2"] = "td/api:2", "/ecs/api-2"  # deployed since
    aws.steps.clear()
    found = await logs(src)
    assert "from /ecs/api-2" in found.evidence
    assert "from /ecs/api-1" not in found.evidence
    assert "DescribeTaskDefinition td/api:2" in aws.steps
    assert aws.steps[-1] == "read /ecs/api-2"
    assert src.log_arns == {"api": "td/api:2"}
    await asyncio.sleep(2 * DELAY)  # the discarded guess leaves no stray error behind
