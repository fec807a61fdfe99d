"""The `/dhanam` listener: ack, parse, dispatch to the command's handler, reply.

Help and parse errors are answered in the ack itself (pure and instant, so the reply arrives
with Slack's own response, well inside its 3 s budget). Every other command acks first, then
does its work and replies through `respond`.

A feature registers each of its commands with its own deps object (`router.add(kind, handler,
deps)`); the handler gets it as `inv.deps`, typed (`Invocation[OperationsDeps]`), and nothing
else. What every command needs on the way in (the parser, the slash command's name, requests in
flight, the latency histogram) is the router's own.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from commands.parser import Parser
from commands.render import error_blocks, help_blocks, help_text
from commands.requests import HelpRequest, Request
from core.errors import ChatOpsError, ParseError
from core.inflight import InFlight
from core.metrics import Metrics
from core.text import nothing_changed

log = structlog.get_logger(__name__)

D = TypeVar("D")


@dataclass(frozen=True)
class Invocation(Generic[D]):
    """One command, understood, with who asked and where, and the means to answer."""

    request: Request
    user_id: str
    user_name: str
    channel_id: str
    respond: AsyncRespond
    client: AsyncWebClient
    deps: D  # the handler's feature's own (commands/<feature>/deps.py)


Handler = Callable[[Invocation[D]], Awaitable[None]]


@dataclass(frozen=True)
class _Route(Generic[D]):
    handler: Handler[D]
    deps: D


class CommandRouter:
    """Maps request kinds to handlers, each with its feature's deps. Command modules add
    theirs through `register(router, deps)`."""

    def __init__(self, *, parser: Parser, slash: str, inflight: InFlight, metrics: Metrics) -> None:
        self._routes: dict[str, _Route[Any]] = {}
        self._parser = parser
        self._slash = slash
        self._inflight = inflight
        self._latency = metrics.command_latency

    def add(self, kind: str, handler: Handler[D], deps: D) -> None:
        if kind in self._routes:
            raise ValueError(f"a handler for {kind} is already registered")
        self._routes[kind] = _Route(handler, deps)

    async def on_command(
        self,
        ack: AsyncAck,
        command: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        slash = self._slash
        started = time.perf_counter()
        text = str(command.get("text") or "")
        try:
            request = self._parser.parse(text)
        except ParseError as exc:
            await ack(
                response_type="ephemeral",
                text=nothing_changed(exc.user_message),
                blocks=error_blocks(slash, exc.user_message, exc.usage),
            )
            self._observe("invalid", "refused", started)
            log.info("command.refused", reason=exc.user_message)
            return

        if isinstance(request, HelpRequest):
            await ack(
                response_type="ephemeral",
                text=help_text(slash, request.topic),
                blocks=help_blocks(slash, request.topic, self._parser.tasks),
            )
            self._observe(request.kind, "ok", started)
            return

        route = self._routes.get(request.kind)
        if route is None:
            message = _not_enabled(request)
            await ack(response_type="ephemeral", text=message, blocks=error_blocks(slash, message))
            self._observe(request.kind, "unavailable", started)
            return

        await ack()
        await self._run(
            route,
            request,
            user_id=str(command.get("user_id", "")),
            user_name=str(command.get("user_name", "")),
            channel_id=str(command.get("channel_id", "")),
            respond=respond,
            client=client,
            started=started,
        )

    async def dispatch(
        self,
        request: Request,
        *,
        user_id: str,
        user_name: str,
        channel_id: str,
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        """Run `request` as if it had been typed (a button asking for a command): the same
        handler with its feature's deps, the same refusals, answered through `respond`. The
        click was acked already."""
        started = time.perf_counter()
        route = self._routes.get(request.kind)
        if route is None:
            message = _not_enabled(request)
            await respond(
                response_type="ephemeral",
                replace_original=False,
                text=message,
                blocks=error_blocks(self._slash, message),
            )
            self._observe(request.kind, "unavailable", started)
            return
        await self._run(
            route,
            request,
            user_id=user_id,
            user_name=user_name,
            channel_id=channel_id,
            respond=respond,
            client=client,
            started=started,
        )

    async def _run(
        self,
        route: _Route[Any],
        request: Request,
        *,
        user_id: str,
        user_name: str,
        channel_id: str,
        respond: AsyncRespond,
        client: AsyncWebClient,
        started: float,
    ) -> None:
        slash = self._slash
        invocation = Invocation(
            request=request,
            user_id=user_id,
            user_name=user_name,
            channel_id=channel_id,
            respond=respond,
            client=client,
            deps=route.deps,
        )
        outcome = "error"
        async with self._inflight.track():
            try:
                await route.handler(invocation)
                outcome = "ok"
            except ChatOpsError as exc:
                outcome = "refused"
                # Said once: a message that already promises it gets no second note.
                said = "nothing was changed" in exc.user_message.lower()
                note = exc.nothing_changed and not said
                await respond(
                    response_type="ephemeral",
                    text=nothing_changed(exc.user_message) if note or said else exc.user_message,
                    blocks=error_blocks(slash, exc.user_message, nothing_changed=note),
                )
            finally:
                self._observe(request.kind, outcome, started)

    def _observe(self, command: str, outcome: str, started: float) -> None:
        self._latency.labels(command, outcome).observe(time.perf_counter() - started)

    def register(self, app: AsyncApp) -> None:
        """Wire the slash command. Called once at start-up, after every feature's commands."""
        app.command(self._slash)(self.on_command)


def _not_enabled(request: Request) -> str:
    return f"`{request.kind.replace('_', ' ')}` is not enabled in this version of the bot"


class CommandDispatch:
    """A command asked for by a button, run through the router (`CommandRouter.dispatch`).
    The router exists only once the app is built: a feature's `register(router, deps)` binds
    it, once, at start-up."""

    def __init__(self) -> None:
        self._router: CommandRouter | None = None

    def bind(self, router: CommandRouter) -> None:
        self._router = router

    async def run(
        self,
        request: Request,
        *,
        user_id: str,
        user_name: str,
        channel_id: str,
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        if self._router is None:
            raise ChatOpsError("commands are not wired yet; try again in a moment")
        await self._router.dispatch(
            request,
            user_id=user_id,
            user_name=user_name,
            channel_id=channel_id,
            respond=respond,
            client=client,
        )
