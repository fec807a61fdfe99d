"""The Bolt AsyncApp: each feature's listeners with its own deps, and the one error handler."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl

import structlog
from slack_bolt.async_app import AsyncApp, AsyncBoltContext, AsyncRespond
from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.components import Components
from bot.logs import bind_request
from commands.buttons import register_buttons
from commands.feature import Feature
from commands.render import error_blocks
from commands.router import CommandRouter
from core.errors import ChatOpsError

log = structlog.get_logger(__name__)


def create_bolt_app(
    components: Components,
    features: Sequence[Feature[Any]],
    *,
    client: AsyncWebClient,
    signing_secret: str | None,
) -> AsyncApp:
    """A Bolt app with every command module registered. No module-level app anywhere."""
    bolt_logger = logging.getLogger("slack_bolt.AsyncApp")  # Bolt's framework logger
    if _TOKEN_SKIPPED not in bolt_logger.filters:
        bolt_logger.addFilter(_TOKEN_SKIPPED)
    app = _bolt_app(client, signing_secret)

    async def bind_logs(
        context: AsyncBoltContext,
        body: dict[str, Any],
        next: Callable[[], Awaitable[None]],
    ) -> None:
        bind_request(
            user_id=context.user_id,
            channel_id=context.channel_id,
            command=str(body.get("command") or body.get("type") or "event"),
        )
        await next()

    app.middleware(bind_logs)

    inflight = components.inflight
    router = CommandRouter(
        parser=components.parser,
        slash=components.config.slack.command,
        inflight=inflight,
        metrics=components.metrics,
    )
    for feature in features:  # each with its own deps (commands/feature.py)
        feature.register(router)
        feature.listen(app, inflight)
    router.register(app)
    register_buttons(app, inflight, *(b for f in features for b in f.bound_buttons()))

    @app.error
    async def on_error(
        error: Exception, body: dict[str, Any], respond: AsyncRespond | None
    ) -> BoltResponse | None:
        if isinstance(error, BoltUnhandledRequestError):
            return _acknowledge_unhandled(body)
        return await _report_error(components.config.slack.command, error, body, respond)

    return app


def _acknowledge_unhandled(body: dict[str, Any]) -> BoltResponse:
    """An empty 200, nothing done: what Slack accepts as the ack of an event, an action, a
    view submission or a shortcut. Logged by what it was, never by its content."""
    event = body.get("event")
    actions = body.get("actions")
    view = body.get("view")
    first_action = actions[0] if isinstance(actions, list) and actions else None
    log.info(
        "slack.unhandled",
        type=_text(body.get("type")),
        event_type=_text(event.get("type")) if isinstance(event, dict) else None,
        action_id=_text(first_action.get("action_id")) if isinstance(first_action, dict) else None,
        callback_id=_text(
            view.get("callback_id") if isinstance(view, dict) else body.get("callback_id")
        ),
        command=_text(body.get("command")),
    )
    return BoltResponse(status=200, body="")


def _text(value: object) -> str | None:
    """An identifier fit for a log line (Slack's are short ASCII), else None."""
    if isinstance(value, str) and value.isascii() and len(value) <= 255:
        return value
    return None


async def _report_error(
    slash: str, error: Exception, body: dict[str, Any], respond: AsyncRespond | None
) -> BoltResponse | None:
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


# -- shapes Slack sends ---------------------------------------------------------------------
# Bolt reads these fields assuming the shape Slack documents (``body["event"]["type"]``,
# ``payload["user"]["id"]``, ``authorizations[0]``…) and raises deep inside on anything else.
# A signed request of another shape is refused here, before Bolt sees it.
_OBJECTS = ("event", "team", "channel", "container", "view", "message", "enterprise", "state")
_LISTS_OF_OBJECTS = ("actions", "authorizations")
_MAY_BE_NULL = ("enterprise", "team")  # Slack itself sends these as null (non-Grid workspaces)
_STRINGS = (
    "type",
    "token",
    "team_id",
    "api_app_id",
    "event_id",
    "user_id",
    "channel_id",
    "command",
    "text",
    "response_url",
    "trigger_id",
    "callback_id",
    "action_ts",
    "message_ts",
)
_WHAT_IT_IS = ("type", "command", "ssl_check")  # events and interactivity; slash commands
_EVENT_STRINGS = ("type", "subtype", "channel_type", "ts", "event_ts", "thread_ts", "bot_id")


def _slack_document(body: str, content_type: str) -> Any:
    """What Bolt's parse_body would read (the same rules), or raises ValueError."""
    if not body:
        return {}
    if content_type.split(";", maxsplit=1)[0].strip() == "application/json" or body.startswith("{"):
        return json.loads(body)
    params = dict(parse_qsl(body, keep_blank_values=True))
    if "payload" in body:
        payload = params.get("payload")
        return json.loads(payload) if payload is not None else {}
    return params


def _wrong_types(document: dict[str, Any], strings: tuple[str, ...]) -> str | None:
    for key in strings:
        if document.get(key) is not None and not isinstance(document[key], str):
            return f"{key} is not a string"
    return None


def _top_level_problem(document: dict[str, Any]) -> str | None:
    for key in _OBJECTS:
        value = document.get(key)
        if value is None and key in document and key not in _MAY_BE_NULL:
            # Bolt reads these with `body.get(key, {}).get(…)`: a JSON null breaks it.
            return f"{key} is null"
        if value is not None and not isinstance(value, dict):
            return f"{key} is not an object"
    for key in _LISTS_OF_OBJECTS:
        value = document.get(key)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(v, dict) for v in value)
        ):
            return f"{key} is not a list of objects"
    user = document.get("user")
    if user is not None and not isinstance(user, (dict, str)):
        return "user is neither an object nor an ID"
    return _wrong_types(document, _STRINGS)


def _block_actions_problem(document: dict[str, Any]) -> str | None:
    """Bolt's matchers read actions[0]["action_id"] (and block_id) as strings."""
    if document.get("type") != "block_actions":
        return None
    actions = document.get("actions")
    if not actions:
        return "block_actions without actions"
    first = actions[0]
    if not isinstance(first.get("action_id"), str):
        return "actions[0].action_id is not a string"
    if first.get("block_id") is not None and not isinstance(first["block_id"], str):
        return "actions[0].block_id is not a string"
    return None


def _nested_problem(document: dict[str, Any]) -> str | None:
    event = document.get("event")
    if isinstance(event, dict):
        problem = _wrong_types(event, _EVENT_STRINGS)
        if problem is not None:
            return f"event.{problem}"
        if not isinstance(event.get("type"), str):
            return "event has no type"
    elif document.get("type") == "event_callback":
        return "event_callback without an event"
    problem = _block_actions_problem(document)
    if problem is not None:
        return problem
    for part in ("user", "team", "channel", "container", "message"):
        value = document.get(part)
        if isinstance(value, dict):
            problem = _wrong_types(value, ("id", "ts", "type", "channel_id", "message_ts"))
            if problem is not None:
                return f"{part}.{problem}"
    return None


def shape_problem(body: str, content_type: str) -> str | None:
    """None when ``body`` has the shape of a Slack request; else what is wrong with it.
    (The JSON is known to be shallow: the HTTP guard refused deep documents.)"""
    try:
        document = _slack_document(body, content_type)
    except ValueError:
        return "not JSON"
    if not isinstance(document, dict):
        return "not an object"
    if not any(document.get(key) for key in _WHAT_IT_IS):
        # Every request Slack sends says what it is; one that does not is not a request no
        # listener takes (answered 200) but a malformed one.
        return "neither type nor command"
    return _top_level_problem(document) or _nested_problem(document)


class _TokenSkippedFilter(logging.Filter):
    """Drops exactly Bolt's "As you gave `client` as well, `token` will be unused": Bolt reads
    SLACK_BOT_TOKEN from the environment itself (`token or os.environ[...]`), so no argument
    avoids the warning, and our client — built from the settings — is the one token source.
    Every other Bolt record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


_TOKEN_SKIPPED = _TokenSkippedFilter()


def _bolt_app(client: AsyncWebClient, signing_secret: str | None) -> AsyncApp:
    return AsyncApp(
        client=client,
        signing_secret=signing_secret,
        # Socket Mode has no signing secret; HTTP mode always verifies.
        request_verification_enabled=signing_secret is not None,
        process_before_response=False,
        logger=None,
        # A signed request no listener takes (an event type, action_id, callback_id or
        # shortcut we do not handle) reaches the error handler below as
        # BoltUnhandledRequestError instead of Bolt's 404: Slack retries a non-2xx event
        # delivery and shows a warning icon for a non-2xx interaction.
        raise_error_for_unhandled_request=True,
    )
