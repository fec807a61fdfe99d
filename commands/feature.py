"""A feature, declared in one place: its narrow deps, the `/dhanam` commands and buttons its
handlers answer (given those deps when registered), the Slack events it listens to, and what it
runs in the background or must stop at shutdown. The process (bot/) takes a feature whole, with
one `add_feature` call, and registers each part where it belongs; a feature never reaches into
the process, nor the process into a feature's handlers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from slack_bolt.async_app import AsyncApp

from commands.buttons import Buttons
from commands.router import CommandRouter
from core.inflight import InFlight
from core.loops import Runner

D = TypeVar("D")

Commands = Callable[[CommandRouter, D], None]  # adds the feature's commands to the router
Events = Callable[[AsyncApp, D, InFlight], None]  # listens to Slack events (App Home)
Step = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Feature(Generic[D]):
    name: str
    deps: D
    commands: Sequence[Commands[D]] = ()
    buttons: Sequence[Buttons[D]] = ()
    events: Sequence[Events[D]] = ()
    jobs: Mapping[str, Runner] = field(default_factory=dict)
    # Awaited at shutdown in reverse order (the last one first), after the jobs have stopped.
    stops: Sequence[Step] = ()

    def register(self, router: CommandRouter) -> None:
        for add in self.commands:
            add(router, self.deps)

    def bound_buttons(self) -> list[Any]:
        return [buttons.bind(self.deps) for buttons in self.buttons]

    def listen(self, app: AsyncApp, inflight: InFlight) -> None:
        for events in self.events:
            events(app, self.deps, inflight)
