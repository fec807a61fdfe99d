"""The checkpoint before every AWS mutation.

The approval flow runs an Action's `execute` inside `guarded(check)`; every method of the AWS
gateway that changes something calls `await before_mutation("ecs:UpdateService")` first. The
check (the flow's: a Lua compare of the execution's claim token that also extends its lease)
raises `GateClosedError` when the execution may no longer proceed — the request was marked in
doubt, its claim was lost — and the mutation does not happen.

A context variable carries the check so Actions need no extra parameter and the next risky
command gets it for free: asyncio tasks and `asyncio.to_thread` copy the context. Outside an
execution (status reads, tests that drive the gateway directly) there is no check.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from core.errors import ChatOpsError

Checkpoint = Callable[[str], Awaitable[None]]

_current: ContextVar[Checkpoint | None] = ContextVar("dhanam_mutation_checkpoint", default=None)


class GateClosedError(ChatOpsError):
    """An execution may not go on: the reason is for people (the card, the audit, a reply)."""

    def __init__(self, user_message: str, *, rule: str = "") -> None:
        super().__init__(user_message)
        self.rule = rule


async def before_mutation(operation: str) -> None:
    """Call immediately before an AWS call that changes something (``operation`` names it,
    e.g. ``ecs:UpdateService``). Raises GateClosedError when the execution must stop."""
    check = _current.get()
    if check is not None:
        await check(operation)


@contextmanager
def guarded(check: Checkpoint) -> Iterator[None]:
    """Run the body with ``check`` called before each AWS mutation it makes."""
    token = _current.set(check)
    try:
        yield
    finally:
        _current.reset(token)
