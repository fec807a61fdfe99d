"""`POST /webhooks/pagerduty`: verify the v3 signature, then hand the event to PagerDutySync.

403 for a missing or wrong signature (and when no secret is configured: fail closed), 400
for a body that is not a v3 envelope, 503 when Redis is down (PagerDuty retries), 2xx
otherwise — pagey.ping and event types the bot does not act on included.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from bot.components import Components
from bot.errors import json_error
from core.errors import StoreUnavailableError
from integrations.pagerduty_webhooks import MalformedWebhookError, parse_event, signature_valid

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 1024 * 1024


def pagerduty_webhook(
    components: Components, secrets: list[str]
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()
        if len(raw) > MAX_BODY_BYTES:
            return json_error(413, "request body is over 1 MiB")
        header = request.headers.get("X-PagerDuty-Signature", "")
        if not secrets or not signature_valid(raw, header, secrets):
            log.warning("pagerduty.webhook_rejected", signed=bool(header))
            return json_error(403, "invalid PagerDuty signature")
        try:
            event = parse_event(raw)
        except MalformedWebhookError as exc:
            return json_error(400, str(exc))
        try:
            async with components.inflight.track():
                outcome = await components.pagerduty.handle(event)
        except StoreUnavailableError:
            return json_error(503, "state store unavailable; retry later")
        return web.json_response({"ok": True, "event": event.event_type, "outcome": outcome})

    return handle
