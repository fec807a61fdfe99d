"""The Bolt AsyncApp: listeners, context injection and the one error handler."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from slack_bolt.async_app import AsyncApp, AsyncBoltContext, AsyncRespond
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.logs import bind_request
from commands import alarm_ui, approvals_ui, home, incidents, risky, state_cmds, status
from commands import router as router_module
from commands.deps import DEPS_KEY, Deps
from commands.render import error_blocks
from core.errors import ChatOpsError

log = structlog.get_logger(__name__)


def create_bolt_app(deps: Deps, *, client: AsyncWebClient, signing_secret: str | None) -> AsyncApp:
    """A Bolt app with every command module registered. No module-level app anywhere."""
    app = AsyncApp(
        client=client,
        signing_secret=signing_secret,
        # Socket Mode has no signing secret; HTTP mode always verifies.
        request_verification_enabled=signing_secret is not None,
        process_before_response=False,
        logger=None,
    )

    async def inject(
        context: AsyncBoltContext,
        body: dict[str, Any],
        next: Callable[[], Awaitable[None]],
    ) -> None:
        context[DEPS_KEY] = deps
        bind_request(
            user_id=context.user_id,
            channel_id=context.channel_id,
            command=str(body.get("command") or body.get("type") or "event"),
        )
        await next()

    app.middleware(inject)

    router = router_module.CommandRouter()
    risky.register(router)
    state_cmds.register(router)
    status.register(router)
    incidents.register(router)
    router_module.register(app, router, deps.config.slack.command)
    approvals_ui.register(app)
    alarm_ui.register(app)
    home.register(app)
    incidents.register_actions(app)

    @app.error
    async def on_error(
        error: Exception, body: dict[str, Any], respond: AsyncRespond | None
    ) -> BoltResponse | None:
        return await _report_error(deps, error, body, respond)

    return app


async def _report_error(
    deps: Deps, error: Exception, body: dict[str, Any], respond: AsyncRespond | None
) -> BoltResponse | None:
    slash = deps.config.slack.command
    known = isinstance(error, ChatOpsError)
    if isinstance(error, ChatOpsError):
        message = error.user_message
        log.info("request.refused", reason=message)
    else:
        error_id = uuid.uuid4().hex[:8]
        message = (
            f"Something went wrong on our side (error id {error_id}). "
            "The details are in the bot's logs under that id."
        )
        log.error("request.failed", error_id=error_id, exc_info=error)
    if respond is not None and body.get("response_url"):
        await respond(
            response_type="ephemeral",
            text=message,
            blocks=error_blocks(slash, message, nothing_changed=known),
        )
    return None
