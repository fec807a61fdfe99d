"""The activation's progress in the approval card's thread: ONE message, posted when execution
starts and edited in place as each step starts, waits, finishes or fails (through
`ActionRuntime.progress`; a deleted message is posted anew). Every step is listed from the
start, so the thread always shows what is done, what is running and what has not run.

```
:rotating_light: DR activation in us-west-2 · 42 s of the 4 h RTO
:white_check_mark: 1. promote dhanam-production-dr — promoted, available
:arrows_counterclockwise: 2. api in dhanam-dr — registering dhanam-api:2
:white_circle: 2. web in dhanam-dr
:white_circle: 3. api.dhanam.io → dhanam-dr-alb-….elb.amazonaws.com
```
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from commands.operations.runtime import ActionRuntime
from core.text import duration


class StepState(StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    NOT_RUN = "not run"


_MARK = {
    StepState.WAITING: ":white_circle:",
    StepState.RUNNING: ":arrows_counterclockwise:",
    StepState.DONE: ":white_check_mark:",
    StepState.FAILED: ":x:",
    StepState.NOT_RUN: ":heavy_minus_sign:",
}


@dataclass
class Step:
    label: str
    state: StepState = StepState.WAITING
    detail: str = ""

    def line(self) -> str:
        detail = f" — {self.detail}" if self.detail else ""
        if self.state is StepState.NOT_RUN:
            detail = " — not run"
        return f"{_MARK[self.state]} {self.label}{detail}"


def against_rto(elapsed: timedelta, rto: timedelta) -> str:
    """`42 s of the 4 h RTO`, or `4 h 5 min — over the 4 h RTO`."""
    if elapsed > rto:
        return f"{duration(elapsed)} — over the {duration(rto)} RTO"
    return f"{duration(elapsed)} of the {duration(rto)} RTO"


def board_text(
    region: str, steps: list[Step], elapsed: timedelta, rto: timedelta, ended: bool | None = None
) -> str:
    """The message: a head line (running, active, or stopped) and one line per step."""
    timing = against_rto(elapsed, rto)
    if ended is None:
        head = f":rotating_light: DR activation in {region} · {timing}"
    elif ended:
        head = f":white_check_mark: DR active in {region} after {timing}"
    else:
        head = f":x: DR activation in {region} stopped after {timing}"
    return "\n".join([head, *(s.line() for s in steps)])


class Board:
    """The steps and their one message. Writing never fails the activation (the progress
    callable swallows Slack's errors)."""

    def __init__(
        self,
        runtime: ActionRuntime,
        request_id: str | None,
        *,
        region: str,
        rto: timedelta,
        labels: list[str],
    ) -> None:
        self.runtime = runtime
        self.request_id = request_id
        self.region = region
        self.rto = rto
        self.steps = [Step(label) for label in labels]
        self.started: datetime = runtime.clock.now()
        self._ts: str | None = None
        self.ended: bool | None = None  # None: running; True: every step done; False: stopped
        self.at = 0  # the step a failure now stops at: the last one set running

    @property
    def elapsed(self) -> timedelta:
        return self.runtime.clock.now() - self.started

    async def set(self, index: int, state: StepState, detail: str = "") -> None:
        step = self.steps[index]
        step.state, step.detail = state, detail
        if state is StepState.RUNNING:
            self.at = index
        await self.show()

    async def fail(self, index: int, detail: str) -> None:
        """Step ``index`` failed: every step after it is marked not run."""
        for other in self.steps[:index]:
            if other.state is StepState.RUNNING:  # a service updated, its tasks not waited for
                other.state, other.detail = StepState.WAITING, f"{other.detail}; not waited for"
        for later in self.steps[index + 1 :]:
            if later.state is StepState.RUNNING:
                later.state, later.detail = StepState.WAITING, f"{later.detail}; not waited for"
            elif later.state is not StepState.DONE:  # a service already up stays done
                later.state = StepState.NOT_RUN
        self.ended = False
        await self.set(index, StepState.FAILED, detail)

    async def finish(self) -> None:
        self.ended = True
        await self.show()

    def done_labels(self) -> list[str]:
        return [s.label for s in self.steps if s.state is StepState.DONE]

    def failure(self, index: int, why: str) -> str:
        """The outcome of an activation stopped at step ``index`` (after `fail`)."""
        step = self.steps[index].label
        done = "; ".join(self.done_labels()) or "none"
        later = self.steps[index + 1 :]
        left = "; ".join(s.label for s in later if s.state is StepState.NOT_RUN) or "none"
        started = "; ".join(self.started_labels())
        if started:
            left += f". Started, not waited for: {started}"
        return (
            f"DR activation stopped at step {step} after {duration(self.elapsed)}: "
            f"{why}. Steps done: {done}. Not run: {left}."
        )

    def started_labels(self) -> list[str]:
        """Steps begun, left unfinished by a failure (a service updated, not waited for)."""
        return [s.label for s in self.steps if s.state is StepState.WAITING and s.detail]

    def left_labels(self) -> list[str]:
        return [s.label for s in self.steps if s.state is not StepState.DONE]

    async def show(self) -> None:
        progress = self.runtime.progress
        if progress is None or self.request_id is None:
            return
        text = board_text(self.region, self.steps, self.elapsed, self.rto, self.ended)
        written = await progress(self.request_id, text, self._ts)
        self._ts = written or self._ts
