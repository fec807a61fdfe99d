"""The CloudWatch alarm parser on every sample, and the pure alarm renderers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from approvals.rollout import RolloutJob
from commands.alarms.render import (
    AlarmView,
    RollbackOffer,
    digest_message,
    rollback_button,
    root_message,
    transition_text,
)
from commands.operations.rollout import rollback_blocks
from integrations.cloudwatch_alarms import (
    AlarmKind,
    AlarmNotification,
    AlarmParseError,
    AlarmState,
    parse_alarm,
    region_code,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "cloudwatch"


def message(name: str) -> str:
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    if "Records" in data:
        return str(data["Records"][0]["Sns"]["Message"])
    if "Message" in data:
        return str(data["Message"])
    return json.dumps(data)


def test_metric_alarm_with_null_description_and_lowercase_dimensions() -> None:
    alarm = parse_alarm(
        message("cloudwatch-metric-alarm-ALARM-sns-http-body.rheoceros.DERIVED.json")
    )
    assert alarm.kind is AlarmKind.METRIC
    assert alarm.description is None
    assert alarm.new_state is AlarmState.ALARM
    assert alarm.old_state is AlarmState.INSUFFICIENT_DATA
    assert alarm.region == "us-east-1"
    assert alarm.region_name == "US East (N. Virginia)"
    assert [(d.name, d.value) for d in alarm.dimensions] == [
        ("MetricGroupId", "routing_table.receive.hook"),
        ("RouteID", "metric_emitting_node"),
    ]
    assert alarm.changed_at == datetime(2021, 11, 10, 2, 45, 55, 640000, tzinfo=UTC)
    assert alarm.condition == "IExecutionFailureHook Sum >= 1 for 1 × 5 min"  # noqa: RUF001
    assert alarm.console_url == (
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
        "#alarmsV2:alarm/if-sim-app_427809481713_us-east-1-metric_emitting_node_failure"
    )


def test_composite_alarm_has_no_trigger() -> None:
    alarm = parse_alarm(
        message("cloudwatch-composite-alarm-ALARM-sns-http-body.rheoceros.DERIVED.json")
    )
    assert alarm.kind is AlarmKind.COMPOSITE
    assert alarm.description is None  # "" in the sample
    assert alarm.alarm_rule is not None
    assert alarm.alarm_rule.startswith("ALARM(arn:aws:")
    assert alarm.triggering_children == [
        "arn:aws:cloudwatch:us-east-1:427809481713:alarm:"
        "if-sim-app_427809481713_us-east-1-metric_emitting_node_failure"
    ]
    assert alarm.condition == alarm.alarm_rule


def test_ok_alarm_with_null_unit_and_datapoints() -> None:
    alarm = parse_alarm(message("cloudwatch-alarm-OK-sns-http-body.DERIVED.json"))
    assert alarm.new_state is AlarmState.OK
    assert alarm.old_state is AlarmState.ALARM
    assert alarm.unit is None
    assert alarm.datapoints_to_alarm == 2
    assert alarm.condition == "HealthCheckStatus SampleCount < 1 for 2 × 1 min"  # noqa: RUF001
    assert "api-jideola%20domain%20alarm" in (alarm.console_url or "")
    decoded = parse_alarm(message("cloudwatch-alarm-OK-message-decoded.json"))
    assert decoded == alarm


def test_metric_math_alarm_uses_trigger_metrics() -> None:
    alarm = parse_alarm(message("aws-lambda-go-cloudwatch-alarm-sns-payload-multiple-metrics.json"))
    assert alarm.kind is AlarmKind.METRIC_MATH
    assert [m.id for m in alarm.metrics] == ["e1", "m1"]
    assert alarm.metrics[1].metric_name == "NetworkOut"
    assert alarm.metrics[1].dimensions[0].name == "InstanceId"
    assert alarm.condition == "m1*1 > 0 for 1 × 1 min"  # noqa: RUF001
    assert alarm.region is None  # "EXAMPLE" / "REGION": no code, so no console link
    assert alarm.console_url is None


def test_single_metric_example() -> None:
    alarm = parse_alarm(message("aws-lambda-go-cloudwatch-alarm-sns-payload-single-metric.json"))
    assert alarm.kind is AlarmKind.METRIC
    assert alarm.statistic == "AVERAGE"
    assert alarm.unit == "Bytes"


@pytest.mark.parametrize("path", sorted(DATA.glob("*.json")), ids=lambda p: p.name)
def test_every_sample_parses(path: Path) -> None:
    assert parse_alarm(message(path.name)).name


@pytest.mark.parametrize(
    "raw", ["Hello world", "{}", '{"AlarmName": "x"}', '{"AlarmName":"x","NewStateValue":"MEH"}']
)
def test_not_an_alarm(raw: str) -> None:
    with pytest.raises(AlarmParseError):
        parse_alarm(raw)


def test_region_codes() -> None:
    assert region_code("US West (Oregon)", None) == "us-west-2"
    assert region_code("EXAMPLE", "arn:aws:cloudwatch:eu-west-1:1:alarm:a") == "eu-west-1"
    assert region_code("Nowhere", "arn:aws:cloudwatch:REGION:1:alarm:a") is None


def _view(state: str = "ALARM", **extra: Any) -> AlarmView:
    alarm = parse_alarm(
        message("cloudwatch-metric-alarm-ALARM-sns-http-body.rheoceros.DERIVED.json")
    )
    return AlarmView(alarm=alarm.model_copy(update={"new_state": AlarmState(state)}), **extra)


def test_rollback_button_has_the_rollout_report_shape() -> None:
    job = RolloutJob(
        request_id="r1",
        subject={
            "service": "api",
            "env": "production",
            "region": "us-east-1",
            "cluster": "c",
            "ecs_service": "dhanam-api",
            "target": "dhanam-api:4",
            "previous": "arn:aws:ecs:us-east-1:1:task-definition/dhanam-api:3",
        },
        label="dhanam-api:4",
        channel="C0DEPLOYS",
        card_ts="1.0",
        started=datetime(2026, 1, 1, tzinfo=UTC),
    )
    theirs = rollback_blocks(job, "a1", timedelta(seconds=5))[1]["elements"][0]
    offer = RollbackOffer("api", "production", "dhanam-api:3", datetime(2026, 1, 1, tzinfo=UTC))
    view = _view(rollback=offer)
    view = AlarmView(alarm=view.alarm.model_copy(update={"name": "a1"}), rollback=offer)
    ours = root_message(view)[1][-1]["elements"][0]
    assert ours == theirs == rollback_button("api", "production", "dhanam-api:3", "a1")
    assert ours["text"]["text"] == "Roll back api in production"  # the environment is on it
    assert json.loads(theirs["value"]) == {
        "service": "api",
        "env": "production",
        "to": "dhanam-api:3",
        "alarm": "a1",
    }


def test_root_message_is_pure_and_complete() -> None:
    text, blocks = root_message(_view())
    rendered = json.dumps(blocks)
    assert text.startswith("ALARM:")
    assert "Open in CloudWatch" in rendered
    assert "alarm_declare_incident" in rendered
    _, ok_blocks = root_message(
        _view("OK", fired_at=datetime(2021, 11, 10, 2, 40, 55, 640000, tzinfo=UTC))
    )
    assert "fired for 5 min" in json.dumps(ok_blocks)
    assert all(b["type"] != "actions" for b in ok_blocks)
    assert "ALARM → *OK*" in transition_text(
        _view("OK", fired_at=datetime(2021, 11, 10, 2, 40, 55, tzinfo=UTC)), AlarmState.ALARM
    )


def test_digest_splits_into_blocks_under_slack_limits() -> None:
    views = [_view() for _ in range(120)]
    _, blocks = digest_message(views)
    assert len(blocks) <= 50
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")


def test_a_job_stored_before_subject_existed_still_loads() -> None:
    """A follow in flight across the upgrade: the old flat ECS fields become the subject."""
    stored = {
        "request_id": "r1",
        "service": "api",
        "env": "production",
        "region": "us-east-1",
        "cluster": "c",
        "ecs_service": "dhanam-api",
        "target": "arn:aws:ecs:us-east-1:1:task-definition/dhanam-api:4",
        "previous": None,
        "alarms": ["a1"],
        "channel": "C0DEPLOYS",
        "card_ts": "1.0",
        "started": "2026-01-01T00:00:00Z",
    }
    job = RolloutJob.model_validate_json(json.dumps(stored))
    assert job.label == "dhanam-api:4"
    assert job.subject["ecs_service"] == "dhanam-api"
    assert "previous" not in job.subject
    assert job.alarms == ["a1"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"statistic": "SUM", "period": 300, "evaluation_periods": 2},
            "HTTPCode_Target_5XX_Count Sum > 5 for 2 × 5 min",  # noqa: RUF001
        ),
        (
            {
                "statistic": "AVERAGE",
                "period": 60,
                "evaluation_periods": 5,
                "datapoints_to_alarm": 3,
            },
            "HTTPCode_Target_5XX_Count Average > 5 (3 of 5 × 1 min)",  # noqa: RUF001
        ),
        (
            {"statistic": "p99", "period": 10, "evaluation_periods": 3},
            "HTTPCode_Target_5XX_Count p99 > 5 for 3 × 10 s",  # noqa: RUF001
        ),
        (
            {"statistic": "Maximum", "period": 3600, "evaluation_periods": 1},
            "HTTPCode_Target_5XX_Count Maximum > 5 for 1 × 1 h",  # noqa: RUF001
        ),
    ],
)
def test_condition_reads_statistic_and_period_as_people_do(
    fields: dict[str, Any], expected: str
) -> None:
    alarm = AlarmNotification(
        name="api-5xx",
        new_state=AlarmState.ALARM,
        changed_at=datetime(2026, 12, 5, tzinfo=UTC),
        kind=AlarmKind.METRIC,
        metric_name="HTTPCode_Target_5XX_Count",
        comparison="GreaterThanThreshold",
        threshold=5,
        **fields,
    )
    assert alarm.condition == expected
