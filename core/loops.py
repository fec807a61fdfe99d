"""The background loops' one shape: a named periodic task that never dies and stops on time.

``run_every`` runs ``work`` every ``interval`` seconds until ``stop`` is set: every exception
an iteration raises is caught and logged with the loop's name (Redis down and Slack errors as
warnings, anything else with its traceback), and the loop carries on. ``Loops`` owns the tasks:
``start`` names them, ``stop`` sets the event, lets the iteration in flight finish within a
bound (``grace``), cancels what is still running after it, and retrieves every task's outcome,
so nothing is left as "Task exception was never retrieved".
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any

import structlog
from slack_sdk.errors import SlackApiError

from core.errors import StoreUnavailableError

log = structlog.get_logger(__name__)

Work = Callable[[], Awaitable[object]]
Lease = Callable[[], AbstractAsyncContextManager[object | None]]
Runner = Callable[[asyncio.Event], Coroutine[Any, Any, None]]

DEFAULT_GRACE = 10.0


def _slack_error(exc: SlackApiError) -> str:
    response = exc.response
    try:
        return str(response.get("error", "unknown")) if response is not None else "unknown"
    except Exception:  # noqa: BLE001 - a malformed response still has to be logged
        return "unknown"


async def run_iteration(name: str, work: Work, *, lease: Lease | None = None) -> bool:
    """One iteration of the loop ``name``: False when it raised (already logged)."""
    try:
        if lease is None:
            await work()
        else:
            async with lease() as held:
                if held is not None:
                    await work()
    except asyncio.CancelledError:
        raise
    except StoreUnavailableError:
        log.warning("loop.store_unavailable", loop=name)
        return False
    except SlackApiError as exc:
        log.warning("loop.slack_error", loop=name, error=_slack_error(exc))
        return False
    except Exception:
        log.exception("loop.failed", loop=name)
        return False
    return True


async def run_every(
    name: str,
    interval: float,
    work: Work,
    stop: asyncio.Event,
    *,
    lease: Lease | None = None,
    jitter: float = 0.0,
    wait_first: bool = False,
) -> None:
    """Run ``work`` every ``interval`` seconds (plus up to ``jitter`` times interval, random)
    until ``stop`` is set; an iteration that raises is logged and the loop goes on. With
    ``lease``, each iteration runs inside ``lease()`` and only when it yields a holder."""
    first = True
    while not stop.is_set():
        if not (first and not wait_first):
            pause = interval + (random.uniform(0.0, jitter * interval) if jitter > 0 else 0.0)  # noqa: S311 - spreading timers, not security
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
            if stop.is_set():
                break
        first = False
        await run_iteration(name, work, lease=lease)


class Loops:
    """Named background loops started together and stopped within ``grace`` seconds."""

    def __init__(self, *, grace: float = DEFAULT_GRACE) -> None:
        self.grace = grace
        self.stop_event = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    @property
    def names(self) -> list[str]:
        return list(self._tasks)

    def running(self, name: str) -> bool:
        task = self._tasks.get(name)
        return task is not None and not task.done()

    def start(self, name: str, run: Runner) -> None:
        """Start ``run(stop_event)`` as the task ``name`` (one task per name)."""
        if self.running(name):
            raise ValueError(f"loop {name!r} is already running")
        stop = self.stop_event
        task = asyncio.create_task(run(stop), name=f"loop:{name}")
        self._tasks[name] = task

        def done(finished: asyncio.Task[None]) -> None:
            if finished.cancelled():
                return
            exc = finished.exception()  # retrieved here, so never "never retrieved"
            if exc is not None:
                log.error("loop.crashed", loop=name, exc_info=exc)
            elif not stop.is_set():
                log.warning("loop.ended_early", loop=name)

        task.add_done_callback(done)

    async def stop(self) -> None:
        """Ask every loop to stop, wait up to ``grace`` seconds for the iteration in flight,
        cancel the rest, and collect every outcome."""
        self.stop_event.set()
        tasks = list(self._tasks.values())
        if tasks:
            await self._finish(tasks)
        self._tasks.clear()
        self.stop_event = asyncio.Event()  # the loops can be started again

    async def _finish(self, tasks: list[asyncio.Task[None]]) -> None:
        _, pending = await asyncio.wait(tasks, timeout=self.grace)
        for task in pending:
            log.warning("loop.cancelled_at_stop", loop=task.get_name().removeprefix("loop:"))
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
