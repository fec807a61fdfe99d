"""CloudWatch Logs, read-only: where a service logs (its task definition's awslogs options) and
its newest log events over a window (FilterLogEvents).

`awslogs_of` is pure: it reads a container's `logConfiguration` from a task definition.
`LogReader.newest` walks the window backwards in slices (FilterLogEvents returns events oldest
first, so the newest `limit` are found by asking for the most recent slice first, then the one
before it, each twice as long), paginating with nextToken, and stops at `limit` events, at
`max_pages` calls or when its time budget is spent — whichever comes first. What it found is
returned newest first, with `complete=False` when a bound cut the search short.

The grep text becomes a CloudWatch filter pattern that matches it literally: one double-quoted
term (`"connection reset"`), with `\\` and `"` escaped inside the quotes, so `?`, `-`, `{`,
`[`, `%` or spaces in the text are matched as characters, never read as pattern syntax (an OR,
an exclusion, a JSON or space-delimited selector, a regular expression). CloudWatch's term
matching is case-sensitive.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from integrations.aws.clients import AwsClients
from integrations.aws.errors import AwsError, call_aws

AWSLOGS = "awslogs"
FIRST_SLICE = timedelta(minutes=5)  # the newest slice of the window asked for first
PAGE_LIMIT = 10_000  # FilterLogEvents' own maximum per page


@dataclass(frozen=True)
class AwsLogs:
    """Where a container's awslogs driver writes: the group, its region (None: the task's own
    region), and the stream prefix (streams are `<prefix>/<container>/<task id>`)."""

    group: str
    region: str | None
    stream_prefix: str | None

    def stream(self, container: str, task_id: str) -> str | None:
        """The stream of one task's container, or None when the driver has no prefix (the
        stream is then named after the Docker container id, which ECS does not report)."""
        return f"{self.stream_prefix}/{container}/{task_id}" if self.stream_prefix else None


def awslogs_of(task_definition: Mapping[str, Any], container: str) -> AwsLogs | None:
    """The awslogs options of `container` in `task_definition` (a DescribeTaskDefinition
    `taskDefinition` dict), or None when the container is absent, logs with another driver,
    or names no group."""
    for definition in task_definition.get("containerDefinitions") or []:
        if definition.get("name") != container:
            continue
        config = definition.get("logConfiguration") or {}
        if config.get("logDriver") != AWSLOGS:
            return None
        options = config.get("options") or {}
        group = options.get("awslogs-group")
        if not group:
            return None
        return AwsLogs(
            group=str(group),
            region=str(options["awslogs-region"]) if options.get("awslogs-region") else None,
            stream_prefix=(
                str(options["awslogs-stream-prefix"])
                if options.get("awslogs-stream-prefix")
                else None
            ),
        )
    return None


def literal_pattern(text: str) -> str:
    """A filter pattern matching `text` as one literal term (see the module doc)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


@dataclass(frozen=True)
class LogEvent:
    at: datetime
    stream: str
    message: str


@dataclass(frozen=True)
class LogSearch:
    """What `LogReader.newest` found: at most `limit` events, newest first."""

    events: list[LogEvent]
    pages: int  # FilterLogEvents calls made
    complete: bool  # False: the page cap or the time budget stopped the search early
    searched_from: datetime  # the oldest moment searched (the window's start when complete)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _event(raw: Mapping[str, Any]) -> LogEvent:
    return LogEvent(
        at=datetime.fromtimestamp(int(raw.get("timestamp", 0)) / 1000, UTC),
        stream=str(raw.get("logStreamName", "")),
        message=str(raw.get("message", "")).rstrip("\n"),
    )


class LogReader:
    """FilterLogEvents over a window, bounded by pages and time (see the module doc)."""

    def __init__(
        self, clients: AwsClients, *, max_pages: int = 20, page_size: int = PAGE_LIMIT
    ) -> None:
        self.clients = clients
        self.max_pages = max_pages
        self.page_size = page_size

    async def newest(
        self,
        logs: AwsLogs,
        region: str,
        *,
        start: datetime,
        end: datetime,
        grep: str | None,
        limit: int,
        budget: float,
    ) -> LogSearch:
        """The newest `limit` events of `logs.group` in [start, end] (matching `grep`
        literally), newest first. `budget` (seconds) bounds the whole search: a call still
        unanswered when it runs out raises AwsError(code="Timeout") if nothing was found yet,
        else the search ends with what was found (complete=False)."""
        client = self.clients.client("logs", logs.region or region)
        deadline = time.monotonic() + budget
        found: list[LogEvent] = []
        pages = 0
        slice_end, width = end, FIRST_SLICE
        base: dict[str, Any] = {"logGroupName": logs.group, "limit": self.page_size}
        if grep:
            base["filterPattern"] = literal_pattern(grep)
        while slice_end > start:
            slice_start = max(start, slice_end - width)
            in_slice: list[LogEvent] = []
            token: str | None = None
            while True:
                left = deadline - time.monotonic()
                if pages >= self.max_pages or left <= 0:
                    return self._partial(found, in_slice, pages, slice_end, limit)
                # Both bounds are inclusive: a later slice ends 1 ms before the one after it
                # began, so an event on the boundary is returned once.
                last_ms = _ms(slice_end) - (0 if slice_end == end else 1)
                kwargs = {**base, "startTime": _ms(slice_start), "endTime": last_ms}
                if token:
                    kwargs["nextToken"] = token
                try:
                    response = await asyncio.wait_for(
                        call_aws("FilterLogEvents", client.filter_log_events, **kwargs), left
                    )
                except TimeoutError:
                    if found or in_slice:
                        return self._partial(found, in_slice, pages, slice_end, limit)
                    raise AwsError(
                        operation="FilterLogEvents",
                        code="Timeout",
                        message=f"no answer within {budget:.1f} s",
                        user_message=f"CloudWatch Logs did not answer within {budget:.1f} s",
                    ) from None
                pages += 1
                in_slice.extend(_event(raw) for raw in response.get("events", []))
                token = response.get("nextToken")
                if not token:
                    break
            found.extend(sorted(in_slice, key=lambda e: e.at, reverse=True))
            if len(found) >= limit:
                return LogSearch(found[:limit], pages, True, slice_start)
            slice_end, width = slice_start, width * 2
        return LogSearch(found[:limit], pages, True, start)

    @staticmethod
    def _partial(
        found: list[LogEvent], in_slice: list[LogEvent], pages: int, slice_end: datetime, limit: int
    ) -> LogSearch:
        """Stopped inside a slice: what it holds so far is its oldest part, so the search is
        incomplete from there on (the slice's newest events may be missing)."""
        events = found + sorted(in_slice, key=lambda e: e.at, reverse=True)
        return LogSearch(events[:limit], pages, False, slice_end)
