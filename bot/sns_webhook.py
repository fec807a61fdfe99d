"""`POST /webhooks/sns`: verify, then confirm a subscription, take an alarm or post a notice.

A CloudWatch alarm is de-duplicated, stored and queued for Slack in one Redis script
(AlarmService.receive): a 503 means nothing was applied, and SNS's retry is processed as new.
Any other verified notification is posted to `alerts_channel` as a plain notice.
400 malformed, 403 unverifiable or topic not allowed, 503 when Redis is down (SNS retries),
502 when a subscription could not be confirmed; never 500.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from bot.components import Components
from bot.errors import json_error
from commands.alarms.store import Intake
from core.errors import StoreUnavailableError
from integrations.cloudwatch_alarms import AlarmParseError, parse_alarm
from integrations.sns import (
    NOTIFICATION,
    SUBSCRIPTION_CONFIRMATION,
    UNSUBSCRIBE_CONFIRMATION,
    FetchError,
    SnsError,
    describe,
    parse_message,
)

log = structlog.get_logger(__name__)


def _ok(status: str, **extra: Any) -> web.Response:
    return web.json_response({"status": status, **extra})


def sns_handler(components: Components) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            message = parse_message(raw)
            components.sns.check_topic(message)
            await components.sns.verify(message)
        except SnsError as exc:
            log.warning("sns.refused", status=exc.status, reason=exc.message)
            return json_error(exc.status, exc.message)
        fields = describe(message)
        try:
            if message["Type"] == NOTIFICATION:
                return await _notification(components, message, fields)
            if not await components.alarm_store.first_delivery(message["MessageId"]):
                log.info("sns.duplicate", **fields)
                return _ok("duplicate")
            try:
                return await _dispatch(components, message, fields)
            except BaseException:
                await components.alarm_store.forget_delivery(message["MessageId"])
                raise
        except StoreUnavailableError as exc:
            log.warning("sns.store_unavailable", error=exc.detail, **fields)
            return json_error(503, "store unavailable; retry later")

    return handle


async def _dispatch(
    components: Components, message: dict[str, str], fields: dict[str, Any]
) -> web.Response:
    kind = message["Type"]
    if kind == SUBSCRIPTION_CONFIRMATION:
        try:
            await components.sns.confirm(message)
        except SnsError as exc:
            await components.alarm_store.forget_delivery(message["MessageId"])
            return json_error(exc.status, exc.message)
        except FetchError as exc:
            log.warning("sns.confirm_failed", error=str(exc), **fields)
            await components.alarm_store.forget_delivery(message["MessageId"])
            return json_error(502, "could not confirm the subscription")
        log.info("sns.subscription_confirmed", **fields)
        return _ok("confirmed")
    if kind == UNSUBSCRIBE_CONFIRMATION:
        log.warning("sns.unsubscribed", **fields)
        return _ok("logged")
    log.warning("sns.unknown_type", **fields)
    return _ok("ignored")


async def _notification(
    components: Components, message: dict[str, str], fields: dict[str, Any]
) -> web.Response:
    """An alarm, or any other notification: each is de-duplicated inside its own one-script
    intake, so a failure leaves nothing half-done for SNS's retry to trip over."""
    message_id = message["MessageId"]
    try:
        alarm = parse_alarm(message["Message"])
    except AlarmParseError as exc:
        log.info("sns.not_an_alarm", reason=str(exc), **fields)
        subject = message.get("Subject") or ""
        if not await components.alarms.notify(subject, message.get("Message") or "", message_id):
            return _ok("duplicate")
        return _ok("accepted", posted_as="notice")
    outcome = await components.alarms.receive(alarm, message_id)
    if outcome is Intake.DUPLICATE:
        log.info("sns.duplicate", **fields)
        return _ok("duplicate")
    return _ok("accepted" if outcome is Intake.QUEUED else "stale", alarm=alarm.name)
