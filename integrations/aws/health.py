"""AWS Health, read-only: the open issues of some services (DescribeEvents).

The Health API has one endpoint, in us-east-1, whatever region the events are about; events
about a global service (CloudFront, Route 53) have the region "global". An account without a
Business, Enterprise On-Ramp or Enterprise support plan is refused with
SubscriptionRequiredException: `HealthReader.open_issues` raises it as `HealthUnavailableError`,
as it does an endpoint that does not answer as the Health API (an error with no AWS error code,
only an HTTP status: a 404, or moto's 500).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from integrations.aws.clients import AwsClients
from integrations.aws.errors import AwsError, call_aws

HEALTH_REGION = "us-east-1"
GLOBAL = "global"
SUBSCRIPTION_REQUIRED = "SubscriptionRequiredException"
_PAGES = 5


class HealthUnavailableError(AwsError):
    """AWS Health cannot be asked from this account or endpoint; `reason` says why."""

    def __init__(self, cause: AwsError, reason: str) -> None:
        super().__init__(
            operation=cause.operation,
            code=cause.code,
            message=cause.message,
            user_message=reason,
            answered=True,
        )
        self.reason = reason


@dataclass(frozen=True)
class HealthEvent:
    service: str  # ECS, RDS, CLOUDFRONT…
    region: str  # us-east-1, or "global"
    event_type: str  # AWS_ECS_OPERATIONAL_ISSUE…
    status: str  # open
    started: datetime | None
    arn: str


def _event(raw: dict[str, Any]) -> HealthEvent:
    started = raw.get("startTime")
    return HealthEvent(
        service=str(raw.get("service", "")),
        region=str(raw.get("region", "")),
        event_type=str(raw.get("eventTypeCode", "")),
        status=str(raw.get("statusCode", "")),
        started=started.astimezone(UTC) if isinstance(started, datetime) else None,
        arn=str(raw.get("arn", "")),
    )


def unavailable_reason(exc: AwsError) -> str | None:
    """Why Health cannot be asked at all, or None when `exc` is an ordinary failure."""
    if exc.code == SUBSCRIPTION_REQUIRED:
        return "AWS Health needs a Business or Enterprise support plan"
    if exc.code.isdigit():  # no AWS error code: not the Health API answering
        return f"the endpoint does not serve the AWS Health API (HTTP {exc.code})"
    return None


class HealthReader:
    def __init__(self, clients: AwsClients) -> None:
        self.clients = clients

    async def open_issues(self, services: list[str], region: str) -> list[HealthEvent]:
        """Open issues of `services` in `region` or global, newest first."""
        health = self.clients.client("health", HEALTH_REGION)

        def collect() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            pages = health.get_paginator("describe_events").paginate(
                filter={
                    "services": services,
                    "eventTypeCategories": ["issue"],
                    "eventStatusCodes": ["open"],
                },
                PaginationConfig={"MaxItems": 100 * _PAGES, "PageSize": 100},
            )
            for page in pages:
                found.extend(dict(e) for e in page.get("events", []))
            return found

        try:
            raw = await call_aws("DescribeEvents", collect)
        except AwsError as exc:
            reason = unavailable_reason(exc)
            if reason is not None:
                raise HealthUnavailableError(exc, reason) from exc
            raise
        events = [_event(e) for e in raw]
        wanted = [e for e in events if e.region in (region, GLOBAL)]
        epoch = datetime.min.replace(tzinfo=UTC)
        return sorted(wanted, key=lambda e: e.started or epoch, reverse=True)
