"""LogReader against moto in server mode: newest first, the window, the literal grep, the
bounds (pages, time) and the errors."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from integrations.aws.clients import AwsClients
from integrations.aws.cloudwatch_logs import FIRST_SLICE, AwsLogs, LogReader
from integrations.aws.errors import AwsError
from sandbox.aws_world import MotoServer

REGION = "us-east-1"
GROUP = "/ecs/reader-test"
LOGS = AwsLogs(group=GROUP, region=None, stream_prefix="api")


@pytest.fixture
def clients(moto_server: MotoServer) -> AwsClients:
    moto_server.reset()
    logs: Any = boto3.client("logs", endpoint_url=moto_server.endpoint_url, region_name=REGION)
    logs.create_log_group(logGroupName=GROUP)
    now = datetime.now(UTC)
    for stream in ("api/api/t1", "api/api/t2"):
        logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    # 40 events, one every 3 minutes back from now: event i is i*3 minutes old.
    for stream, parity in (("api/api/t1", 0), ("api/api/t2", 1)):
        events = [
            {
                "timestamp": int((now - timedelta(minutes=3 * i)).timestamp() * 1000),
                "message": f"line {i} {'timeout' if i % 4 == 0 else 'ok'}",
            }
            for i in range(40)
            if i % 2 == parity
        ]
        events.sort(key=lambda e: e["timestamp"])
        logs.put_log_events(logGroupName=GROUP, logStreamName=stream, logEvents=events)
    return AwsClients(moto_server.endpoint_url, REGION)


async def newest(reader: LogReader, **kwargs: Any) -> Any:
    now = datetime.now(UTC)
    args: dict[str, Any] = {
        "start": now - timedelta(hours=3),
        "end": now + timedelta(seconds=1),
        "grep": None,
        "limit": 10,
        "budget": 10.0,
    }
    return await reader.newest(LOGS, REGION, **(args | kwargs))


async def test_newest_first_across_streams_up_to_the_limit(clients: AwsClients) -> None:
    found = await newest(LogReader(clients))
    assert [e.message.split()[1] for e in found.events] == [str(i) for i in range(10)]
    assert {e.stream for e in found.events} == {"api/api/t1", "api/api/t2"}
    assert found.complete


async def test_window_and_literal_grep(clients: AwsClients) -> None:
    now = datetime.now(UTC)
    found = await newest(
        LogReader(clients), start=now - timedelta(minutes=31), grep="timeout", limit=50
    )
    assert [e.message for e in found.events] == [
        f"line {i} timeout" for i in (0, 4, 8)
    ]  # 0..30 min old, every 4th
    assert found.complete
    assert found.searched_from == now - timedelta(minutes=31)


async def test_the_page_cap_stops_early_and_says_so(clients: AwsClients) -> None:
    now = datetime.now(UTC)
    found = await newest(LogReader(clients, max_pages=2, page_size=1), limit=40)
    assert found.pages == 2
    assert not found.complete
    # the 30 s slice (line 0) then the 60 s one before it (empty) were read whole
    assert [e.message for e in found.events] == ["line 0 timeout"]
    assert now - timedelta(seconds=92) < found.searched_from < now - timedelta(seconds=88)


async def test_a_missing_group_is_an_aws_error(clients: AwsClients) -> None:
    reader = LogReader(clients)
    with pytest.raises(AwsError) as caught:
        await reader.newest(
            AwsLogs(group="/ecs/nope", region=None, stream_prefix=None),
            REGION,
            start=datetime.now(UTC) - timedelta(minutes=5),
            end=datetime.now(UTC),
            grep=None,
            limit=5,
            budget=5.0,
        )
    assert caught.value.code == "ResourceNotFoundException"


async def test_no_answer_within_the_budget_is_a_timeout(clients: AwsClients) -> None:
    client = clients.client("logs", REGION)

    def slow(**_kwargs: object) -> None:
        time.sleep(0.5)

    client.meta.events.register("before-call.logs.FilterLogEvents", slow)
    try:
        with pytest.raises(AwsError) as caught:
            await newest(LogReader(clients), budget=0.2)
    finally:
        client.meta.events.unregister("before-call.logs.FilterLogEvents", slow)
    assert caught.value.code == "Timeout"
    assert "did not answer within 0.2 s" in caught.value.user_message


async def test_an_event_on_a_slice_boundary_is_returned_once(
    clients: AwsClients, moto_server: MotoServer
) -> None:
    logs: Any = boto3.client("logs", endpoint_url=moto_server.endpoint_url, region_name=REGION)
    end = datetime.now(UTC).replace(microsecond=0)
    logs.create_log_group(logGroupName="/ecs/boundary")
    logs.create_log_stream(logGroupName="/ecs/boundary", logStreamName="s")
    at = int((end - FIRST_SLICE).timestamp() * 1000)  # where the first and second slices meet
    logs.put_log_events(
        logGroupName="/ecs/boundary",
        logStreamName="s",
        logEvents=[{"timestamp": at, "message": "on the boundary"}],
    )
    found = await LogReader(clients).newest(
        AwsLogs(group="/ecs/boundary", region=None, stream_prefix=None),
        REGION,
        start=end - timedelta(hours=1),
        end=end,
        grep=None,
        limit=10,
        budget=10.0,
    )
    assert [e.message for e in found.events] == ["on the boundary"]


class BusyLogs:
    """FilterLogEvents of a group logging one event every `step_ms` ms up to `last_ms`:
    events in [startTime, endTime] oldest first, `limit` a page, nextToken an offset."""

    def __init__(self, last_ms: int, step_ms: int) -> None:
        self.last_ms, self.step_ms = last_ms, step_ms
        self.calls: list[dict[str, Any]] = []

    def times(self, start: int, end: int) -> list[int]:
        end = min(end, self.last_ms)
        first = -(-start // self.step_ms) * self.step_ms
        return list(range(first, end + 1, self.step_ms))

    def filter_log_events(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        times = self.times(kwargs["startTime"], kwargs["endTime"])
        offset = int(kwargs.get("nextToken") or 0)
        page = times[offset : offset + kwargs["limit"]]
        answer: dict[str, Any] = {
            "events": [{"timestamp": t, "message": f"at {t}", "logStreamName": "s"} for t in page]
        }
        if offset + len(page) < len(times):
            answer["nextToken"] = str(offset + len(page))
        return answer


class BusyClients:
    def __init__(self, logs: BusyLogs) -> None:
        self.logs = logs

    def client(self, _service: str, _region: str) -> BusyLogs:
        return self.logs


BUSY_END = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


async def busy_search(step_ms: int, *, limit: int, max_pages: int) -> tuple[Any, BusyLogs]:
    end_ms = int(BUSY_END.timestamp() * 1000)
    logs = BusyLogs(end_ms, step_ms)
    reader = LogReader(BusyClients(logs), max_pages=max_pages)  # type: ignore[arg-type]
    found = await reader.newest(
        LOGS,
        REGION,
        start=BUSY_END - timedelta(minutes=15),
        end=BUSY_END,
        grep=None,
        limit=limit,
        budget=10.0,
    )
    return found, logs


async def test_a_busy_group_shows_its_newest_lines() -> None:
    """1,000 lines a second: the 50 newest are the last 50 ms, found in a few small pages
    (the slice is narrowed towards now, never paged through from its oldest events)."""
    found, logs = await busy_search(1, limit=50, max_pages=20)
    end_ms = int(BUSY_END.timestamp() * 1000)
    assert [e.message for e in found.events] == [f"at {end_ms - i}" for i in range(50)]
    assert found.complete
    assert found.pages <= 20
    assert all(call["limit"] <= 50 for call in logs.calls)
    assert logs.calls[0]["endTime"] - logs.calls[0]["startTime"] < 30_000  # a 30 s slice


@pytest.mark.parametrize("step_ms", [1, 7, 250, 1_000, 60_000])
@pytest.mark.parametrize("max_pages", [1, 3, 20])
@pytest.mark.parametrize("limit", [1, 50, 500])
async def test_no_line_newer_than_searched_from_is_ever_missing(
    step_ms: int, max_pages: int, limit: int
) -> None:
    """Whatever the density and the bounds: the lines shown are the newest, newest first, once
    each; when the search stops early, every line newer than `searched_from` (the note's
    "lines older than … may be missing") is among them; when complete, they are exactly the
    newest `limit` lines."""
    found, logs = await busy_search(step_ms, limit=limit, max_pages=max_pages)
    start_ms = int((BUSY_END - timedelta(minutes=15)).timestamp() * 1000)
    truth = sorted(logs.times(start_ms, logs.last_ms), reverse=True)[:limit]
    shown = [int(e.message.split()[1]) for e in found.events]
    assert shown == sorted(set(shown), reverse=True)
    assert found.pages <= max_pages
    if found.complete:
        assert shown == truth
    else:
        since = int(found.searched_from.timestamp() * 1000)
        newer = [t for t in truth if t >= since]
        assert shown[: len(newer)] == newer
