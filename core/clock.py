"""A clock that can be replaced in tests and the sandbox."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    def skew(self) -> float:
        """Seconds this clock is ahead of the wall clock. Redis-side time (approvals/lua.py)
        adds it to Redis TIME: 0 for the system clock, so production uses Redis time only."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def skew(self) -> float:
        return 0.0


class ManualClock:
    """A clock that moves only when told to: for tests and benchmarks of expiry and leases."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
        self._mono = 0.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def skew(self) -> float:
        return (self._now - datetime.now(UTC)).total_seconds()

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds
