"""The app factory: one aiohttp application serving Slack, webhooks, health and metrics."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import structlog
from aiohttp import web
from redis.exceptions import RedisError
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

from bot.components import Components
from bot.errors import json_error
from bot.guard import MAX_BODY_BYTES, create_guard
from bot.pagerduty_webhook import pagerduty_webhook
from bot.process import Process
from bot.slack_app import create_bolt_app, shape_problem
from bot.sns_webhook import sns_handler
from bot.wiring import Overrides, build_components
from core.config import Config
from core.loops import Loops
from core.metrics import CONTENT_TYPE, Metrics
from core.redis import redis_key
from core.settings import Settings
from integrations.redis_client import create_redis, ping
from integrations.slack.client import create_web_client

log = structlog.get_logger(__name__)

VERSION = "0.1.0"


class SlackVerifier:
    """Checks Slack's request signature; with no secret (Socket Mode) it accepts nothing."""

    def __init__(self, secret: str | None) -> None:
        self._verifier = SignatureVerifier(secret) if secret else None

    def valid(self, body: str, headers: Mapping[str, str]) -> bool:
        timestamp = headers.get("X-Slack-Request-Timestamp", "")
        signature = headers.get("X-Slack-Signature", "")
        if self._verifier is None or not signature or not signature.isascii():
            return False
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            return False
        return self._verifier.is_valid(body, timestamp, signature)


DEPS = web.AppKey("deps", Components)
BOLT = web.AppKey("bolt", AsyncApp)
METRICS = web.AppKey("metrics", Metrics)
VERIFIER = web.AppKey("verifier", SlackVerifier)
LOOPS = web.AppKey("loops", Loops)
PROCESS = web.AppKey("process", Process)


EVENT_TTL_SECONDS = 3600


async def _seen_before(components: Components, body: str, headers: Mapping[str, str]) -> bool:
    """Events API deliveries carry an event_id; the first delivery claims it in Redis and
    retries of it are acknowledged without being processed again. Without Redis, events are
    processed (none of them changes anything risky)."""
    if not headers.get("Content-Type", "").startswith("application/json"):
        return False
    try:
        event_id = json.loads(body).get("event_id")
    except (ValueError, AttributeError):
        return False
    if not isinstance(event_id, str) or not event_id:
        return False
    try:
        first = await components.redis.set(
            redis_key("slack-event", event_id), "1", nx=True, ex=EVENT_TTL_SECONDS
        )
    except (RedisError, OSError, TimeoutError):
        log.warning("slack.event_dedupe_unavailable", event_id=event_id)
        return False
    return not first


async def _admit(request: web.Request) -> str | web.Response:
    """The body, once it is UTF-8, signed by Slack and not a retry already handled; else the
    answer to give. Verify before parsing, so an unsigned body learns nothing about what we
    accept (Bolt verifies again: one more HMAC). Without a signing secret (Socket Mode) the
    HTTP endpoint accepts nothing: fail closed."""
    raw = await request.read()
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        return json_error(400, "body is not UTF-8")
    if not request.app[VERIFIER].valid(body, request.headers):
        return json_error(401, "invalid or stale Slack signature")
    if await _seen_before(request.app[DEPS], body, request.headers):
        # Slack retries an event it thinks we missed (X-Slack-Retry-Num); it was handled.
        return web.json_response({"ok": True, "duplicate": True})
    return body


async def slack_events(request: web.Request) -> web.Response:
    body = await _admit(request)
    if isinstance(body, web.Response):
        return body
    problem = shape_problem(body, request.headers.get("Content-Type", ""))
    if problem is not None:
        # Signed by Slack but not a shape Slack sends: nothing is done with it.
        log.warning("slack.unexpected_shape", problem=problem)
        return json_error(400, f"malformed Slack request: {problem}")
    try:
        bolt_request = AsyncBoltRequest(
            body=body,
            query=request.query_string,
            headers={k.lower(): v for k, v in request.headers.items()},
        )
        response = await request.app[BOLT].async_dispatch(bolt_request)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        # Bolt parses the body before routing; a signed but malformed body lands here
        # (json.JSONDecodeError is a ValueError). Anything else reaches the guard.
        return json_error(400, "malformed Slack request")
    content_type = response.headers.get("content-type", ["application/json"])[0]
    if response.status == 401:
        return json_error(401, "invalid or stale Slack signature")
    if response.status >= 400 and not response.body.startswith("{"):
        return json_error(response.status, response.body)
    return web.Response(
        status=response.status,
        body=response.body.encode("utf-8"),
        content_type=content_type.split(";")[0],
    )


async def health(request: web.Request) -> web.Response:
    result = await ping(request.app[DEPS].redis)
    check: dict[str, Any] = {"ok": result.ok, "latency_ms": result.latency_ms}
    if result.error:
        check["error"] = result.error
    status = "healthy" if result.ok else "unhealthy"
    return web.json_response(
        {"status": status, "version": VERSION, "checks": {"redis": check}},
        status=200 if result.ok else 503,
    )


async def metrics_view(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def create_app(
    settings: Settings, config: Config, overrides: Overrides | None = None
) -> web.Application:
    """Build the application. Connections are opened lazily and closed on cleanup."""
    overrides = overrides or Overrides()
    metrics = Metrics()
    redis = overrides.redis or create_redis(
        settings.redis_url.get_secret_value(), cluster=settings.redis_cluster
    )
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
    client = create_web_client(token, settings.slack_api_url, metrics)
    process = Process(jobs=overrides.sweeper)

    async def close_slack() -> None:
        session = getattr(client, "session", None)
        if session is not None:
            await session.close()

    if overrides.redis is None:  # a Redis handed in is its owner's to close
        process.add("redis", stop=redis.aclose)
    process.add("slack", stop=close_slack)
    components = build_components(
        settings, config, overrides, redis=redis, client=client, metrics=metrics, process=process
    )
    secret = settings.slack_signing_secret
    bolt = create_bolt_app(
        components,
        process.features,
        client=client,
        signing_secret=secret.get_secret_value() if secret else None,
    )

    app = web.Application(middlewares=[create_guard(metrics)], client_max_size=MAX_BODY_BYTES)
    app[DEPS] = components
    app[BOLT] = bolt
    app[METRICS] = metrics
    app[LOOPS] = process.loops
    app[PROCESS] = process
    app[VERIFIER] = SlackVerifier(secret.get_secret_value() if secret else None)
    app.router.add_post("/slack/events", slack_events)
    app.router.add_post("/webhooks/sns", sns_handler(components))
    app.router.add_post(
        "/webhooks/pagerduty", pagerduty_webhook(components, settings.webhook_secrets())
    )
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics_view)

    async def resources(_: web.Application) -> AsyncIterator[None]:
        log.info("app.started", version=VERSION)
        await process.start()
        yield
        await process.stop()  # bot/process.py: jobs, then every part in reverse order
        log.info("app.stopped")

    app.cleanup_ctx.append(resources)
    return app
