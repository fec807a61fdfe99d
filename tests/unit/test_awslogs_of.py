"""Where a container logs, read from its task definition (integrations.aws.cloudwatch_logs)."""

from __future__ import annotations

from typing import Any

from integrations.aws.cloudwatch_logs import AwsLogs, awslogs_of, literal_pattern


def definition(*containers: dict[str, Any]) -> dict[str, Any]:
    return {"family": "dhanam-api", "containerDefinitions": list(containers)}


def awslogs(name: str, **options: str) -> dict[str, Any]:
    return {"name": name, "logConfiguration": {"logDriver": "awslogs", "options": options}}


def test_the_named_containers_group_region_and_prefix() -> None:
    task = definition(
        awslogs("sidecar", **{"awslogs-group": "/ecs/sidecar"}),
        awslogs(
            "api",
            **{
                "awslogs-group": "/ecs/dhanam-api",
                "awslogs-region": "eu-west-1",
                "awslogs-stream-prefix": "api",
            },
        ),
    )
    found = awslogs_of(task, "api")
    assert found == AwsLogs(group="/ecs/dhanam-api", region="eu-west-1", stream_prefix="api")
    assert found.stream("api", "0123abcd") == "api/api/0123abcd"


def test_no_region_or_prefix_is_none_and_no_stream_name() -> None:
    found = awslogs_of(definition(awslogs("api", **{"awslogs-group": "/ecs/x"})), "api")
    assert found == AwsLogs(group="/ecs/x", region=None, stream_prefix=None)
    assert found.stream("api", "t") is None


def test_none_when_absent_other_driver_or_no_group() -> None:
    splunk = {"name": "api", "logConfiguration": {"logDriver": "splunk", "options": {}}}
    assert awslogs_of(definition(splunk), "api") is None
    assert awslogs_of(definition({"name": "api"}), "api") is None
    assert awslogs_of(definition(awslogs("api")), "api") is None
    assert awslogs_of(definition(awslogs("web", **{"awslogs-group": "/g"})), "api") is None
    assert awslogs_of({}, "api") is None


def test_grep_text_is_one_quoted_literal_term() -> None:
    assert literal_pattern("timeout") == '"timeout"'
    assert literal_pattern('say "hi" ?ERROR -x') == '"say \\"hi\\" ?ERROR -x"'
    assert literal_pattern("a\\b") == '"a\\\\b"'
    assert literal_pattern('{ $.level = "x" }') == '"{ $.level = \\"x\\" }"'
