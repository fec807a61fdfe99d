"""The running process: what it holds, the background jobs it runs, and the order it lets go.

Everything that needs starting or stopping registers once, with `add` (or `add_feature` for a
feature: commands/feature.py), when it is built: a
name, and any of `start` (awaited at start-up, in registration order), `stop` (awaited at
shutdown, in reverse registration order: what was built on something stops before it) and
`jobs` (named background loops, `core.loops` shapes). Start-up runs the starts, then the jobs;
shutdown stops the jobs first (each lets its iteration in flight finish, bounded), then the
stops one by one, each on its own: one that fails is logged and the rest still run. Nothing
outside this module orders a shutdown by hand.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from commands.feature import Feature
from core.loops import Loops, Runner

log = structlog.get_logger(__name__)

Step = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Part:
    name: str
    start: Step | None = None
    stop: Step | None = None
    jobs: Mapping[str, Runner] = field(default_factory=dict)


class Process:
    def __init__(self, *, jobs: bool = True, loops: Loops | None = None) -> None:
        self._parts: list[Part] = []
        self.features: list[Feature[Any]] = []
        self._run_jobs = jobs  # False: tests and benchmarks drive the background work
        self.loops = loops or Loops()
        self._started = False

    def add(
        self,
        name: str,
        *,
        start: Step | None = None,
        stop: Step | None = None,
        jobs: Mapping[str, Runner] | None = None,
    ) -> None:
        if self._started:
            raise RuntimeError(f"{name}: parts are added before the process starts")
        if any(part.name == name for part in self._parts):
            raise ValueError(f"a part named {name!r} is already added")
        self._parts.append(Part(name, start, stop, dict(jobs or {})))

    def add_feature(self, feature: Feature[Any]) -> None:
        """A feature whole: its jobs and stops become a part here; its commands, buttons and
        events are registered with Slack from `features` (bot/slack_app.py)."""

        async def stop() -> None:
            for step in reversed(feature.stops):
                await step()

        self.add(feature.name, stop=stop if feature.stops else None, jobs=feature.jobs)
        self.features.append(feature)

    @property
    def parts(self) -> list[str]:
        return [part.name for part in self._parts]

    @property
    def job_names(self) -> list[str]:
        return [job for part in self._parts for job in part.jobs]

    async def start(self) -> None:
        self._started = True
        for part in self._parts:
            if part.start is not None:
                await part.start()
        if self._run_jobs:
            for part in self._parts:
                for job, run in part.jobs.items():
                    self.loops.start(job, run)

    async def stop(self) -> None:
        await self.loops.stop()
        for part in reversed(self._parts):
            if part.stop is None:
                continue
            try:
                await part.stop()
            except Exception:  # one part failing to stop must not keep the others running
                log.exception("process.stop_failed", part=part.name)
