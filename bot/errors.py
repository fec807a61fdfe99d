"""The one JSON error body every HTTP route answers with: ``{"error": <reason>, "message": …}``
(and, where the answer is logged, ``"error_id"``). The reason comes from the status, from one
table, so a route cannot name the same status two ways."""

from __future__ import annotations

from typing import Any

from aiohttp import web

REASONS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    501: "not_implemented",
    502: "bad_gateway",
    503: "unavailable",
}


def json_error(status: int, message: str, **extra: Any) -> web.Response:
    """``status`` with the contract's body; a status not in REASONS is ``"error"``."""
    body = {"error": REASONS.get(status, "error"), "message": message, **extra}
    return web.json_response(body, status=status)
