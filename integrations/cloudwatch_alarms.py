"""CloudWatch alarm notifications (the JSON `Message` of an SNS Notification) -> a typed model.

Pure: no I/O. Handles metric alarms (`Trigger.MetricName`), metric-math alarms
(`Trigger.Metrics[]`) and composite alarms (no `Trigger`; `AlarmRule`). Traps seen in real
deliveries: `Region` is a display name ("US East (N. Virginia)"), not a code; dimension keys are
lowercase (`name`/`value`); `AlarmDescription` can be null; `Unit` can be null.

Long: the three alarm shapes, their parsing traps and the one-line condition people read are
one model of a CloudWatch notification; split, each shape would lose its tests' single home.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from core.text import duration

_REGION_CODE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")

# CloudWatch's "Region" field is the region's display name.
REGION_NAMES: dict[str, str] = {
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)",
    "af-south-1": "Africa (Cape Town)",
    "ap-east-1": "Asia Pacific (Hong Kong)",
    "ap-south-1": "Asia Pacific (Mumbai)",
    "ap-northeast-1": "Asia Pacific (Tokyo)",
    "ap-northeast-2": "Asia Pacific (Seoul)",
    "ap-northeast-3": "Asia Pacific (Osaka)",
    "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-southeast-2": "Asia Pacific (Sydney)",
    "ca-central-1": "Canada (Central)",
    "eu-central-1": "EU (Frankfurt)",
    "eu-west-1": "EU (Ireland)",
    "eu-west-2": "EU (London)",
    "eu-west-3": "EU (Paris)",
    "eu-north-1": "EU (Stockholm)",
    "eu-south-1": "EU (Milan)",
    "me-south-1": "Middle East (Bahrain)",
    "sa-east-1": "South America (Sao Paulo)",
    "mx-central-1": "Mexico (Central)",
}
_REGION_CODES = {name: code for code, name in REGION_NAMES.items()}

_OPERATORS = {
    "GreaterThanOrEqualToThreshold": ">=",
    "GreaterThanThreshold": ">",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
    "LessThanLowerOrGreaterThanUpperThreshold": "outside band",
    "LessThanLowerThreshold": "< lower band",
    "GreaterThanUpperThreshold": "> upper band",
}


class AlarmParseError(ValueError):
    """The message is not a CloudWatch alarm notification."""


class AlarmState(StrEnum):
    OK = "OK"
    ALARM = "ALARM"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


class AlarmKind(StrEnum):
    METRIC = "metric"
    METRIC_MATH = "metric_math"
    COMPOSITE = "composite"


class Dimension(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    value: str


class MetricQuery(BaseModel):
    """One entry of `Trigger.Metrics` (a metric-math alarm)."""

    model_config = ConfigDict(frozen=True)
    id: str
    expression: str | None = None
    label: str | None = None
    return_data: bool = False
    namespace: str | None = None
    metric_name: str | None = None
    stat: str | None = None
    dimensions: list[Dimension] = Field(default_factory=list)


class AlarmNotification(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    description: str | None = None
    account_id: str | None = None
    new_state: AlarmState
    old_state: AlarmState | None = None
    reason: str = ""
    changed_at: datetime
    region: str | None = None  # the code ("us-east-1"), when it can be told
    region_name: str | None = None  # as CloudWatch wrote it
    arn: str | None = None
    kind: AlarmKind
    metric_name: str | None = None
    namespace: str | None = None
    statistic: str | None = None
    unit: str | None = None
    dimensions: list[Dimension] = Field(default_factory=list)
    comparison: str | None = None
    threshold: float | None = None
    period: int | None = None
    evaluation_periods: int | None = None
    datapoints_to_alarm: int | None = None
    metrics: list[MetricQuery] = Field(default_factory=list)
    alarm_rule: str | None = None
    triggering_children: list[str] = Field(default_factory=list)

    def dimension_values(self, name: str) -> frozenset[str]:
        """Every value of dimension ``name`` the alarm watches: the metric's own dimensions and
        those of each metric in a metric-math alarm (``ClusterName``, ``ServiceName``, …)."""
        dimensions = [*self.dimensions, *(d for m in self.metrics for d in m.dimensions)]
        return frozenset(d.value for d in dimensions if d.name == name)

    @property
    def console_url(self) -> str | None:
        if not self.region:
            return None
        host = f"{self.region}.console.aws.amazon.com"
        if self.region.startswith("cn-"):
            host = f"{self.region}.console.amazonaws.cn"
        name = quote(self.name, safe="")
        return f"https://{host}/cloudwatch/home?region={self.region}#alarmsV2:alarm/{name}"

    @property
    def condition(self) -> str:
        """`HTTPCode_Target_5XX_Count Sum > 5 for 2 TIMES 5 min` (TIMES: the multiplication
        sign), or the composite rule: the statistic as the CloudWatch console writes it, the
        period as people say it."""
        if self.kind is AlarmKind.COMPOSITE:
            return self.alarm_rule or "composite alarm"
        if self.kind is AlarmKind.METRIC_MATH:
            shown = next((m for m in self.metrics if m.return_data), None)
            what = (shown.expression or shown.label or shown.id) if shown else "metric math"
        else:
            what = " ".join(p for p in (self.metric_name, statistic_name(self.statistic)) if p)
        operator = _OPERATORS.get(self.comparison or "", self.comparison or "?")
        threshold = "" if self.threshold is None else f" {self.threshold:g}"
        periods = ""
        if self.period and self.evaluation_periods:
            span = f"{self.evaluation_periods} {TIMES} {duration(self.period)}"
            periods = f" for {span}"
            if self.datapoints_to_alarm and self.datapoints_to_alarm != self.evaluation_periods:
                periods = f" ({self.datapoints_to_alarm} of {span})"
        return f"{what} {operator}{threshold}{periods}".strip()


TIMES = "\N{MULTIPLICATION SIGN}"  # evaluation periods times the period: "2 TIMES 5 min"

# SNS sends the statistic in upper snake case; the console and the API's own enum say these.
_STATISTICS = {
    "SUM": "Sum",
    "AVERAGE": "Average",
    "SAMPLE_COUNT": "SampleCount",
    "SAMPLECOUNT": "SampleCount",
    "MINIMUM": "Minimum",
    "MAXIMUM": "Maximum",
}


def statistic_name(value: str | None) -> str | None:
    """``SUM`` → ``Sum``, ``SAMPLE_COUNT`` → ``SampleCount``; an extended statistic (``p99``)
    or one already in CloudWatch's case is kept as it is."""
    if not value:
        return value
    return _STATISTICS.get(value.upper().replace(" ", "_"), value)


def parse_time(value: str) -> datetime:
    """`2021-11-10T02:45:55.640+0000` (CloudWatch) or ISO 8601 with Z."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError) as exc:
        raise AlarmParseError(f"bad StateChangeTime {value!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def region_code(display: str | None, arn: str | None) -> str | None:
    """The region code from the alarm ARN, else from CloudWatch's display name."""
    parts = (arn or "").split(":")
    if len(parts) > 4 and _REGION_CODE.match(parts[3]):
        return parts[3]
    if display and _REGION_CODE.match(display):
        return display
    return _REGION_CODES.get(display or "")


def _dimensions(raw: Any) -> list[Dimension]:
    out = []
    for item in raw or []:
        if isinstance(item, dict):
            # CloudWatch writes lowercase keys in notifications; the API uses Name/Value.
            name = item.get("name", item.get("Name"))
            value = item.get("value", item.get("Value"))
            if name is not None:
                out.append(Dimension(name=str(name), value=str(value)))
    return out


def _query(raw: dict[str, Any]) -> MetricQuery:
    stat = raw.get("MetricStat") or {}
    metric = stat.get("Metric") or {}
    return MetricQuery(
        id=str(raw.get("Id", "")),
        expression=raw.get("Expression"),
        label=raw.get("Label"),
        return_data=bool(raw.get("ReturnData", False)),
        namespace=metric.get("Namespace"),
        metric_name=metric.get("MetricName"),
        stat=stat.get("Stat"),
        dimensions=_dimensions(metric.get("Dimensions")),
    )


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _trigger_fields(trigger: dict[str, Any]) -> dict[str, Any]:
    threshold = trigger.get("Threshold")
    fields: dict[str, Any] = {
        "comparison": trigger.get("ComparisonOperator"),
        "threshold": float(threshold) if isinstance(threshold, int | float) else None,
        "period": _int(trigger.get("Period")),
        "evaluation_periods": _int(trigger.get("EvaluationPeriods")),
        "datapoints_to_alarm": _int(trigger.get("DatapointsToAlarm")),
    }
    if trigger.get("Metrics"):
        fields["kind"] = AlarmKind.METRIC_MATH
        fields["metrics"] = [_query(m) for m in trigger["Metrics"] if isinstance(m, dict)]
    else:
        fields["kind"] = AlarmKind.METRIC
        fields["metric_name"] = trigger.get("MetricName")
        fields["namespace"] = trigger.get("Namespace")
        fields["statistic"] = trigger.get("ExtendedStatistic") or trigger.get("Statistic")
        fields["unit"] = trigger.get("Unit")
        fields["dimensions"] = _dimensions(trigger.get("Dimensions"))
    return fields


def _state(value: Any, field: str) -> AlarmState:
    try:
        return AlarmState(str(value))
    except ValueError:
        raise AlarmParseError(f"{field} is {value!r}, not a CloudWatch alarm state") from None


def parse_alarm(message: str | dict[str, Any]) -> AlarmNotification:
    """Parse an alarm `Message`; AlarmParseError when it is not one."""
    if isinstance(message, str):
        try:
            data = json.loads(message)
        except json.JSONDecodeError:
            raise AlarmParseError("message is not JSON") from None
    else:
        data = message
    if not isinstance(data, dict) or not data.get("AlarmName") or "NewStateValue" not in data:
        raise AlarmParseError("no AlarmName/NewStateValue: not a CloudWatch alarm")
    arn = data.get("AlarmArn")
    display = data.get("Region")
    fields: dict[str, Any] = {
        "name": str(data["AlarmName"]),
        "description": data.get("AlarmDescription") or None,
        "account_id": data.get("AWSAccountId"),
        "new_state": _state(data["NewStateValue"], "NewStateValue"),
        "old_state": _state(data["OldStateValue"], "OldStateValue")
        if data.get("OldStateValue")
        else None,
        "reason": str(data.get("NewStateReason") or ""),
        "changed_at": parse_time(str(data.get("StateChangeTime", ""))),
        "region": region_code(display, arn),
        "region_name": display,
        "arn": arn,
    }
    trigger = data.get("Trigger")
    if isinstance(trigger, dict):
        fields.update(_trigger_fields(trigger))
    else:
        fields["kind"] = AlarmKind.COMPOSITE
        fields["alarm_rule"] = data.get("AlarmRule")
        fields["triggering_children"] = [
            str(child.get("Arn"))
            for child in data.get("TriggeringChildren") or []
            if isinstance(child, dict) and child.get("Arn")
        ]
    return AlarmNotification(**fields)
