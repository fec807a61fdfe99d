"""CloudWatch Logs, read-only: where a service logs (its task definition's awslogs options) and
its newest log events over a window (FilterLogEvents).

`awslogs_of` is pure: it reads a container's `logConfiguration` from a task definition.
`LogReader.newest` walks the window backwards in slices. FilterLogEvents returns events oldest
first, so the newest `limit` are found by asking for the most recent slice first (30 s), then
the one before it, each twice as long as the last, with pages of at most `limit` events. A
slice holding more events than still needed (a page brought enough and there are more) is not
paged through — what came is its oldest part — it is narrowed to its newer half and read again,
until it fits; on a busy group the search thus homes in on the last moments instead of spending
its pages on the oldest events of a long slice. Every moment after the slice being read has
been read whole, so `searched_from` is always true: lines older than it may be missing, newer
ones are not. It stops at `limit` events, at `max_pages` calls or when its time budget is spent
— whichever comes first. What it found is returned newest first, with `complete=False` when a
bound cut the search short.

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
FIRST_SLICE = timedelta(seconds=30)  # the newest slice of the window asked for first
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


def _ms_of(span: timedelta) -> int:
    return int(span.total_seconds() * 1000)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


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
        start_ms, width = _ms(start), _ms_of(FIRST_SLICE)
        # Slices are [slice_start, slice_end] in whole ms, both inclusive; the next one (older)
        # ends 1 ms before this one began, so an event on a boundary is returned once.
        slice_end = _ms(end)
        base: dict[str, Any] = {
            "logGroupName": logs.group,
            "limit": max(1, min(limit, self.page_size)),
        }
        if grep:
            base["filterPattern"] = literal_pattern(grep)
        while slice_end >= start_ms and len(found) < limit:
            slice_start = max(start_ms, slice_end - width + 1)
            need = limit - len(found)
            in_slice: list[LogEvent] = []
            token: str | None = None
            while True:
                left = deadline - time.monotonic()
                if pages >= self.max_pages or left <= 0:
                    return self._partial(found, in_slice, pages, slice_end, limit)
                kwargs = {**base, "startTime": slice_start, "endTime": slice_end}
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
                if len(in_slice) >= need and slice_start < slice_end:
                    # More than needed, and what came is the slice's oldest part: read the
                    # newer half of the slice instead of paging through the rest.
                    slice_start += (slice_end - slice_start + 1) // 2
                    width = slice_end - slice_start + 1
                    in_slice, token = [], None
            found.extend(sorted(in_slice, key=lambda e: e.at, reverse=True))
            slice_end, width = slice_start - 1, width * 2
        if len(found) >= limit:
            return LogSearch(found[:limit], pages, True, _at(slice_end + 1))
        return LogSearch(found, pages, True, start)

    @staticmethod
    def _partial(
        found: list[LogEvent], in_slice: list[LogEvent], pages: int, slice_end: int, limit: int
    ) -> LogSearch:
        """Stopped inside a slice: what it holds so far is its oldest part, so the search is
        incomplete from there on (the slice's newest events may be missing). Every event
        after `slice_end` (ms) was read."""
        events = found + sorted(in_slice, key=lambda e: e.at, reverse=True)
        return LogSearch(events[:limit], pages, False, _at(slice_end + 1))
