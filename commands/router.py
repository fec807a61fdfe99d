"""The `/dhanam` listener: ack, parse, dispatch to the command's handler, reply.

Help and parse errors are answered in the ack itself (pure and instant, so the reply arrives
with Slack's own response, well inside its 3 s budget). Every other command acks first, then
does its work and replies through `respond`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from commands.deps import DEPS_KEY, Deps
from commands.render import error_blocks, help_blocks, help_text
from commands.requests import HelpRequest, Request
from core.errors import ChatOpsError, ParseError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Invocation:
    """One command, understood, with who asked and where, and the means to answer."""

    request: Request
    user_id: str
    user_name: str
    channel_id: str
    respond: AsyncRespond
    client: AsyncWebClient
    deps: Deps


Handler = Callable[[Invocation], Awaitable[None]]


class CommandRouter:
    """Maps request kinds to handlers. Command modules add theirs through `register`."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def add(self, kind: str, handler: Handler) -> None:
        if kind in self._handlers:
            raise ValueError(f"a handler for {kind} is already registered")
        self._handlers[kind] = handler

    def handler_for(self, kind: str) -> Handler | None:
        return self._handlers.get(kind)

    async def on_command(
        self,
        ack: AsyncAck,
        command: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
        context: dict[str, Any],
    ) -> None:
        deps: Deps = context[DEPS_KEY]
        slash = deps.config.slack.command
        started = time.perf_counter()
        text = str(command.get("text") or "")
        try:
            request = deps.parser.parse(text)
        except ParseError as exc:
            await ack(
                response_type="ephemeral",
                text=f"{exc.user_message} — nothing was changed",
                blocks=error_blocks(slash, exc.user_message, exc.usage),
            )
            _observe(deps, "invalid", "refused", started)
            log.info("command.refused", reason=exc.user_message)
            return

        if isinstance(request, HelpRequest):
            await ack(
                response_type="ephemeral",
                text=help_text(slash, request.topic),
                blocks=help_blocks(slash, request.topic),
            )
            _observe(deps, request.kind, "ok", started)
            return

        handler = self._handlers.get(request.kind)
        if handler is None:
            message = (
                f"`{request.kind.replace('_', ' ')}` is not enabled in this version of the bot"
            )
            await ack(response_type="ephemeral", text=message, blocks=error_blocks(slash, message))
            _observe(deps, request.kind, "unavailable", started)
            return

        await ack()
        invocation = Invocation(
            request=request,
            user_id=str(command.get("user_id", "")),
            user_name=str(command.get("user_name", "")),
            channel_id=str(command.get("channel_id", "")),
            respond=respond,
            client=client,
            deps=deps,
        )
        outcome = "error"
        async with deps.inflight.track():
            try:
                await handler(invocation)
                outcome = "ok"
            except ChatOpsError as exc:
                outcome = "refused"
                # Said once: a message that already promises it gets no second note.
                said = "nothing was changed" in exc.user_message.lower()
                note = exc.nothing_changed and not said
                await respond(
                    response_type="ephemeral",
                    text=exc.user_message,
                    blocks=error_blocks(slash, exc.user_message, nothing_changed=note),
                )
            finally:
                _observe(deps, request.kind, outcome, started)


def _observe(deps: Deps, command: str, outcome: str, started: float) -> None:
    deps.metrics.command_latency.labels(command, outcome).observe(time.perf_counter() - started)


def register(app: AsyncApp, router: CommandRouter, slash: str) -> None:
    """Wire the slash command. Called once at start-up."""
    app.command(slash)(router.on_command)
