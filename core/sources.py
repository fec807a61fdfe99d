"""Reading several sources at once under a time budget, for replies that must come in time
(`/dhanam status`, `dr status`): each source's value, or why there is none.

`within` runs one read for at most `budget` seconds; a timeout, a refusal (ChatOpsError's
message) or any other failure becomes the reading's error, logged once with the source's name,
and never fails the others read beside it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import structlog

from core.errors import ChatOpsError

log = structlog.get_logger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Reading(Generic[T]):
    """One source: its value, or why there is none (a refusal, not found, a timeout)."""

    value: T | None
    error: str | None  # None: the value is there
    ms: float


async def within(
    name: str, budget: float, work: Callable[[], Awaitable[T]], *, event: str
) -> Reading[T]:
    """Run `work` for at most `budget` seconds; any failure becomes the reading's error (logged
    as `event` with the source's name)."""
    started = time.perf_counter()
    value: T | None = None
    error: str | None = None
    try:
        value = await asyncio.wait_for(work(), budget)
    except TimeoutError:
        error = f"timed out after {budget:g} s"
    except ChatOpsError as exc:
        error = exc.user_message
    except Exception as exc:  # noqa: BLE001 - one source's failure must not fail the others
        error = f"{type(exc).__name__}: {exc}"[:200]
    ms = round((time.perf_counter() - started) * 1000, 1)
    if error is not None:
        log.warning(event, source=name, error=error, ms=ms)
    return Reading(value, error, ms)
