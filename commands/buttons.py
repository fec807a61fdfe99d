"""Buttons: the one preamble every block action shares, written once.

A feature collects its buttons in a `Buttons` set typed by its deps object and writes only what
the click does::

    buttons: Buttons[AlarmsDeps] = Buttons()

    @buttons.button(AlarmActionId.ACKNOWLEDGE, read=_target)
    async def on_acknowledge(click: Click[AlarmsDeps, _Target]) -> None: ...

and `register_buttons(app, inflight, buttons.bind(deps), …)` wires every set, each with its
feature's deps (`click.deps`), into Bolt at start-up. For each click the helper acks first
(Slack's 3 s budget is for the ack; no listener acks with options), reads the button's value (a
JSON object unless the button says otherwise; a value its reader cannot read gets "This button
is broken." and nothing else is done), runs the handler inside `inflight.track()` and turns a
ChatOpsError into an ephemeral reply to the clicker only. Action ids come from commands/ids.py.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar, overload

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from core.errors import ChatOpsError
from core.inflight import InFlight

log = structlog.get_logger(__name__)

D = TypeVar("D")
T = TypeVar("T")

BROKEN = "This button is broken."
# What a reader raises on a value it cannot read: bad JSON, a missing key, a wrong type, a bad
# enum member or number. Anything else is a bug and goes to the app's one error handler.
UNREADABLE = (ValueError, KeyError, IndexError, TypeError, AttributeError)


def json_object(raw: str) -> dict[str, Any]:
    """The default reader: the value is a JSON object."""
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise TypeError("the button's value is not a JSON object")
    return value


def text(raw: str) -> str:
    """The value as sent (a request id), or "" for an element that has none (checkboxes)."""
    return raw


@dataclass(frozen=True)
class Click(Generic[D, T]):
    """One click, read: who, where, which button, its value, and how to answer the clicker;
    `deps` is the button's feature's own (commands/<feature>/deps.py)."""

    deps: D
    user: str
    channel: str
    action_id: str
    value: T
    action: dict[str, Any]
    body: dict[str, Any]
    respond: AsyncRespond
    client: AsyncWebClient | None = None  # the Web API client Bolt gives the listener

    async def reply(self, message: str) -> None:
        """An ephemeral reply to the clicker; the message with the button stays as it is."""
        await self.respond(response_type="ephemeral", replace_original=False, text=message)


Handler = Callable[[Click[D, T]], Awaitable[None]]
Listener = Callable[..., Awaitable[None]]


@dataclass(frozen=True)
class _Entry(Generic[D]):
    handler: Handler[D, Any]
    read: Callable[[str], Any]


def _listener(entry: _Entry[D], deps: D, inflight: InFlight) -> Listener:
    handler, read = entry.handler, entry.read

    async def listener(
        ack: AsyncAck,
        body: dict[str, Any],
        action: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        await ack()
        user = str(body.get("user", {}).get("id", ""))
        channel = str(body.get("channel", {}).get("id", ""))
        action_id = str(action.get("action_id", ""))
        try:
            value = read(str(action.get("value", "")))
        except UNREADABLE:
            log.info("button.broken", action_id=action_id, user_id=user)
            await respond(response_type="ephemeral", replace_original=False, text=BROKEN)
            return
        click = Click(deps, user, channel, action_id, value, action, body, respond, client)
        async with inflight.track():
            try:
                await handler(click)
            except ChatOpsError as exc:
                log.info("button.refused", action_id=action_id, reason=exc.user_message)
                await click.reply(exc.user_message)

    listener.__name__ = listener.__qualname__ = getattr(handler, "__name__", "button")
    return listener


class Buttons(Generic[D]):
    """One feature's buttons: `@buttons.button(ActionId.X)` collects, `bind(deps)` gives them
    their feature's deps, `register_buttons` wires."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry[D]] = {}

    @overload
    def button(
        self, *action_ids: StrEnum
    ) -> Callable[[Handler[D, dict[str, Any]]], Handler[D, dict[str, Any]]]: ...

    @overload
    def button(
        self, *action_ids: StrEnum, read: Callable[[str], T]
    ) -> Callable[[Handler[D, T]], Handler[D, T]]: ...

    def button(
        self, *action_ids: StrEnum, read: Callable[[str], Any] = json_object
    ) -> Callable[[Handler[D, Any]], Handler[D, Any]]:
        """Register the decorated handler for each of `action_ids`; `read` turns the button's
        value into `click.value`, raising one of UNREADABLE when it cannot."""
        if not action_ids:
            raise ValueError("a button needs at least one action id")

        def decorate(handler: Handler[D, Any]) -> Handler[D, Any]:
            entry = _Entry(handler, read)
            for action_id in action_ids:
                if action_id.value in self._entries:
                    raise ValueError(f"two handlers for the button {action_id.value!r}")
                self._entries[action_id.value] = entry
            return handler

        return decorate

    def bind(self, deps: D) -> Bound[D]:
        """These buttons with the deps their handlers get as `click.deps`."""
        return Bound(self, deps)

    def listeners(self, deps: D, inflight: InFlight) -> Iterator[tuple[str, Listener]]:
        for action_id, entry in self._entries.items():
            yield action_id, _listener(entry, deps, inflight)


@dataclass(frozen=True)
class Bound(Generic[D]):
    """A feature's buttons and its deps, ready to wire."""

    buttons: Buttons[D]
    deps: D

    def listeners(self, inflight: InFlight) -> Iterator[tuple[str, Listener]]:
        return self.buttons.listeners(self.deps, inflight)


def register_buttons(app: AsyncApp, inflight: InFlight, *sets: Bound[Any]) -> None:
    """Wire every button of every set; one action id handled twice is a start-up error."""
    seen: set[str] = set()
    for bound in sets:
        for action_id, listener in bound.listeners(inflight):
            if action_id in seen:
                raise ValueError(f"two handlers for the button {action_id!r}")
            seen.add(action_id)
            app.action(action_id)(listener)
