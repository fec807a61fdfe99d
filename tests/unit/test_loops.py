"""core.loops: the one background-loop shape — never dies, stops within its bound, logs with
its name, leaves no task exception unretrieved."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import structlog
from slack_sdk.errors import SlackApiError
from structlog.testing import capture_logs

import core.loops
from core.errors import StoreUnavailableError
from core.loops import Loops, run_every, run_iteration


@pytest.fixture(autouse=True)
def _fresh_loop_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    """core.loops' logger as capture_logs can see it. The bot configures structlog with
    cache_logger_on_first_use: once an app in this worker has logged through core.loops and
    another app has configured structlog again (a new processors list), the module's cached
    logger keeps the old list while capture_logs swaps the new one's contents, and sees nothing
    (4 of these tests failed in full runs, by test order). A fresh proxy binds on first use,
    inside the test's capture_logs."""
    monkeypatch.setattr(core.loops, "log", structlog.get_logger("core.loops"))


async def _collect_handler(seen: list[dict[str, Any]]) -> None:
    """Record what the loop's exception handler sees ("Task exception was never retrieved"
    and friends); the tests assert it stays empty."""
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: seen.append(ctx))


async def _settle() -> None:
    gc.collect()
    await asyncio.sleep(0)
    gc.collect()


def _slack_error(code: str) -> SlackApiError:
    return SlackApiError(code, {"ok": False, "error": code})


async def test_an_iteration_that_raises_keeps_the_loop_going() -> None:
    stop = asyncio.Event()
    calls = 0
    failures: list[BaseException] = [
        RuntimeError("boom"),
        _slack_error("is_archived"),
        _slack_error("channel_not_found"),
        _slack_error("message_not_found"),
        _slack_error("ratelimited"),
        StoreUnavailableError("redis down"),
        KeyError("unexpected"),
    ]

    async def work() -> None:
        nonlocal calls
        calls += 1
        if failures:
            raise failures.pop(0)
        if calls >= 10:
            stop.set()

    with capture_logs() as logs:
        await asyncio.wait_for(run_every("test.loop", 0.001, work, stop), 5)
    assert calls == 10
    assert not failures
    events = [(e["event"], e.get("error")) for e in logs]
    assert ("loop.failed", None) in events
    assert ("loop.slack_error", "is_archived") in events
    assert ("loop.slack_error", "ratelimited") in events
    assert ("loop.store_unavailable", None) in events
    assert all(e["loop"] == "test.loop" for e in logs)
    assert len(logs) == 7


async def test_exceptions_are_logged_with_the_loop_name_and_traceback() -> None:
    async def work() -> None:
        raise ValueError("bad shape")

    with capture_logs() as logs:
        ok = await run_iteration("alarms.background", work)
    assert ok is False
    [entry] = logs
    assert entry["event"] == "loop.failed"
    assert entry["loop"] == "alarms.background"
    assert entry["log_level"] == "error"
    assert entry["exc_info"] is True


async def test_a_lease_gates_the_work() -> None:
    held: list[str | None] = ["token", None, "token"]
    ran = 0
    stop = asyncio.Event()

    @asynccontextmanager
    async def lease() -> AsyncIterator[str | None]:
        yield held.pop(0) if held else None

    async def work() -> None:
        nonlocal ran
        ran += 1
        if not held:
            stop.set()

    await asyncio.wait_for(run_every("leased", 0.001, work, stop, lease=lease), 5)
    assert ran == 2


async def test_wait_first_and_jitter_keep_the_pause() -> None:
    stop = asyncio.Event()
    started = time.monotonic()
    first_at: list[float] = []

    async def work() -> None:
        first_at.append(time.monotonic() - started)
        stop.set()

    await run_every("late", 0.05, work, stop, wait_first=True, jitter=0.5)
    assert 0.05 <= first_at[0] < 1.0


async def test_stop_ends_an_idle_loop_at_once() -> None:
    loops = Loops(grace=5)
    ticks = 0

    async def work() -> None:
        nonlocal ticks
        ticks += 1

    loops.start("idle", lambda stop: run_every("idle", 3600, work, stop))
    await asyncio.sleep(0.01)
    assert loops.running("idle")
    started = time.monotonic()
    await loops.stop()
    assert time.monotonic() - started < 1
    assert ticks == 1
    assert not loops.running("idle")


async def test_stop_lets_the_iteration_in_flight_finish_within_the_bound() -> None:
    loops = Loops(grace=2)
    finished = asyncio.Event()
    entered = asyncio.Event()

    async def work() -> None:
        entered.set()
        await asyncio.sleep(0.05)
        finished.set()

    loops.start("busy", lambda stop: run_every("busy", 3600, work, stop))
    await entered.wait()
    await loops.stop()
    assert finished.is_set()


async def test_stop_cancels_an_iteration_that_outlives_the_bound() -> None:
    seen: list[dict[str, Any]] = []
    await _collect_handler(seen)
    loops = Loops(grace=0.1)
    entered = asyncio.Event()

    async def hangs() -> None:
        entered.set()
        await asyncio.sleep(3600)

    loops.start("stuck", lambda stop: run_every("stuck", 1, hangs, stop))
    await entered.wait()
    started = time.monotonic()
    with capture_logs() as logs:
        await loops.stop()
    assert time.monotonic() - started < 1.5
    assert {"event": "loop.cancelled_at_stop", "loop": "stuck", "log_level": "warning"} in logs
    await _settle()
    assert seen == []


async def test_a_runner_that_crashes_is_retrieved_and_logged() -> None:
    seen: list[dict[str, Any]] = []
    await _collect_handler(seen)
    loops = Loops(grace=1)

    async def crashes(_stop: asyncio.Event) -> None:
        raise RuntimeError("outside the iteration")

    with capture_logs() as logs:
        loops.start("crashy", crashes)
        await asyncio.sleep(0.01)
        await loops.stop()
    crashed = [e for e in logs if e["event"] == "loop.crashed"]
    assert [e["loop"] for e in crashed] == ["crashy"]
    await _settle()
    assert seen == []


async def test_no_task_exception_is_left_unretrieved_when_iterations_fail() -> None:
    seen: list[dict[str, Any]] = []
    await _collect_handler(seen)
    loops = Loops(grace=1)
    count = 0
    enough = asyncio.Event()

    async def flaky() -> None:
        nonlocal count
        count += 1
        if count >= 20:
            enough.set()
        raise _slack_error("is_archived") if count % 2 else RuntimeError("500")

    with capture_logs():
        loops.start("flaky", lambda stop: run_every("flaky", 0.001, flaky, stop))
        await asyncio.wait_for(enough.wait(), 5)
        await loops.stop()
    await _settle()
    assert seen == []
    assert count >= 20


async def test_one_task_per_name() -> None:
    loops = Loops(grace=1)
    loops.start("one", lambda stop: run_every("one", 3600, _noop, stop))
    with pytest.raises(ValueError, match="already running"):
        loops.start("one", lambda stop: run_every("one", 3600, _noop, stop))
    assert loops.names == ["one"]
    await loops.stop()
    assert loops.names == []
    loops.start("one", lambda stop: run_every("one", 3600, _noop, stop))  # again after stop
    assert loops.running("one")
    await loops.stop()


async def _noop() -> None:
    return None
