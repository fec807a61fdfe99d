"""The one HTTP guard in front of every route (an aiohttp middleware).

Before a handler runs: request id and log context; 413 for a body over 1 MiB; header values
that are not ASCII where a signature lives -> 401 (Slack) / 403 (PagerDuty, SNS); JSON nested
deeper than ``MAX_JSON_DEPTH`` -> 400 before any handler, Bolt or model parses it (Python's
json recurses and a 10,000-level body raises RecursionError deep inside whoever parses it).

Around the handler: whatever escapes becomes the contract's JSON error
``{"error": …, "message": …, "error_id": …}`` — 400 for input-shaped failures, 503 when a
dependency (Redis, the network) is down or for anything else unexpected — logged once with the
error id and the traceback; never a 500. Metrics count every answer by route and status.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

import structlog
from aiohttp import ClientError, web
from aiohttp.typedefs import Middleware
from redis.exceptions import RedisError

from bot.errors import json_error
from bot.logs import bind_request, clear_request
from core.errors import StoreUnavailableError
from core.metrics import Metrics

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 64

SLACK_ROUTE = "/slack/events"
SNS_ROUTE = "/webhooks/sns"
PAGERDUTY_ROUTE = "/webhooks/pagerduty"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Dependencies that are down: the sender should retry later.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    StoreUnavailableError,
    RedisError,
    ClientError,
    OSError,
    TimeoutError,
)
# Failures shaped by the input (a body no model expected): the sender's request is at fault.
_MALFORMED: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    RecursionError,
    UnicodeError,
)


def new_error_id() -> str:
    return uuid.uuid4().hex[:12]


# -- JSON depth -----------------------------------------------------------------------------
# Written by hand because no library does this: json, orjson and ujson either recurse (and
# raise RecursionError, or segfault-guard at their own fixed depth) or build the whole tree
# before anyone can look at it; none takes a max-depth argument. This scanner is iterative:
# one regex finds strings (skipped whole, escapes included) and brackets; a counter does the
# rest. It does not validate JSON — the real parser does that afterwards, once the depth is
# known to be safe.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.S)


def json_too_deep(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``text`` (JSON, possibly malformed) nests arrays/objects over ``limit``."""
    if isinstance(text, bytes):
        # latin-1 maps every byte to one character: the structural characters are ASCII and
        # no byte of a UTF-8 multi-byte sequence is ever mistaken for one.
        text = text.decode("latin-1")
    if text.count("[") + text.count("{") <= limit:
        return False  # cannot be deeper than the number of openers
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > limit:
                return True
        elif token in ("]", "}"):
            depth = max(depth - 1, 0)
    return False


def _looks_like_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


def _sns_message_too_deep(text: str) -> bool:
    try:
        message = json.loads(text).get("Message")
    except (ValueError, AttributeError, RecursionError):
        return False  # the handler answers 400 for a body that is not an SNS message
    return isinstance(message, str) and _looks_like_json(message) and json_too_deep(message)


def body_too_deep(route: str, raw: bytes) -> bool:
    """The route's JSON documents, wherever they are in the body: the body itself (webhooks,
    Slack's Events API), Slack's form field ``payload`` (interactivity), SNS's ``Message``."""
    text = raw.decode("utf-8", errors="replace")
    if route == SLACK_ROUTE:
        if _looks_like_json(text):
            return json_too_deep(text)
        return "payload" in text and any(
            json_too_deep(value)
            for key, value in parse_qsl(text, keep_blank_values=True)
            if key == "payload"
        )
    if json_too_deep(text):
        return True
    return route == SNS_ROUTE and '"Message"' in text and _sns_message_too_deep(text)


# -- headers ---------------------------------------------------------------------------------
def _non_ascii_signature_header(route: str, request: web.Request) -> int | None:
    """401/403 when a header the route's signature check reads is not ASCII (no valid
    signature, timestamp or SNS field is): answered here, before any comparison that would
    raise on it."""
    if route == SLACK_ROUTE:
        names: tuple[str, ...] = ("X-Slack-Signature", "X-Slack-Request-Timestamp")
        status = 401
    elif route == PAGERDUTY_ROUTE:
        names = ("X-PagerDuty-Signature",)
        status = 403
    elif route == SNS_ROUTE:
        names = tuple(k for k in request.headers if k.lower().startswith("x-amz-sns-"))
        status = 403
    else:
        return None
    for name in names:
        for value in request.headers.getall(name, []):
            if not value.isascii():
                return status
    return None


_AUTH_MESSAGES = {
    SLACK_ROUTE: "invalid or stale Slack signature",
    PAGERDUTY_ROUTE: "invalid PagerDuty signature",
    SNS_ROUTE: "invalid SNS signature",
}


async def _screen(route: str, request: web.Request) -> web.Response | None:
    """The checks made before any handler: size, signature headers, JSON depth."""
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        return json_error(413, "request body is over 1 MiB")
    status = _non_ascii_signature_header(route, request)
    if status is not None:
        error_id = new_error_id()
        log.warning("http.non_ascii_signature_header", error_id=error_id, status=status)
        return json_error(status, _AUTH_MESSAGES[route], error_id=error_id)
    if request.method == "POST" and route in _AUTH_MESSAGES:
        raw = await request.read()  # cached: the handler reads the same bytes
        if body_too_deep(route, raw):
            error_id = new_error_id()
            log.warning("http.json_too_deep", error_id=error_id, limit=MAX_JSON_DEPTH)
            return json_error(
                400,
                f"JSON nested deeper than {MAX_JSON_DEPTH} levels",
                error_id=error_id,
            )
    return None


def _from_exception(exc: Exception) -> web.Response:
    error_id = new_error_id()
    if isinstance(exc, web.HTTPException):
        if exc.status == 413:
            return json_error(413, "request body is over 1 MiB")
        if exc.status < 500:
            return json_error(exc.status, exc.reason)
    if isinstance(exc, _UNAVAILABLE):
        log.error("http.dependency_unavailable", error_id=error_id, exc_info=exc)
        return json_error(503, "a dependency is unavailable; retry later", error_id=error_id)
    if isinstance(exc, _MALFORMED):
        log.error("http.malformed_request", error_id=error_id, exc_info=exc)
        return json_error(400, "malformed request", error_id=error_id)
    log.error("http.unhandled", error_id=error_id, exc_info=exc)
    return json_error(503, "unexpected error; retry later", error_id=error_id)


def _no_500(response: web.StreamResponse) -> web.StreamResponse:
    """A handler's own 500 (or a 5xx that is not JSON) becomes the contract's 503."""
    if response.status < 500 or (
        response.status in (502, 503) and response.content_type == "application/json"
    ):
        return response
    error_id = new_error_id()
    log.error("http.handler_5xx", error_id=error_id, status=response.status)
    return json_error(503, "unexpected error; retry later", error_id=error_id)


def create_guard(metrics: Metrics) -> Middleware:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        clear_request()
        request_id = request.headers.get("X-Request-Id", "")
        if not request_id.isascii() or not 0 < len(request_id) <= 128:
            request_id = uuid.uuid4().hex
        bind_request(request_id=request_id, route=request.path)
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        started = time.perf_counter()
        response: web.StreamResponse
        try:
            early = await _screen(route, request)
            response = early if early is not None else _no_500(await handler(request))
        except Exception as exc:  # noqa: BLE001 - the one place that turns anything into JSON
            response = _from_exception(exc)
        response.headers["X-Request-Id"] = request_id
        metrics.http_requests.labels(route, request.method, str(response.status)).inc()
        if route != "/metrics":
            log.debug(
                "http.request",
                method=request.method,
                status=response.status,
                ms=round((time.perf_counter() - started) * 1000, 2),
            )
        return response

    return guard
