"""structlog set-up: JSON lines in production, readable lines in the sandbox.

Every record, ours and the libraries' (aiohttp, slack_bolt, botocore, asyncio), goes through the
same processors. Secrets are redacted twice:

- on the event dict, before rendering: values under secret-looking keys (token, secret,
  password, signature, …) and secret-looking substrings in any string value;
- on the final rendered line, after exceptions and tracebacks are formatted, in both the JSON
  and the console format: Slack tokens (xoxb-, xoxp-, xoxa-, xoxe-, xapp-, …), passwords in URLs
  (`redis://:pw@host`, `rediss://user:pw@…`), `key=value` / `"key": "value"` pairs whose key
  names a secret (aws_secret_access_key, SecretAccessKey, routing_key, api_token, …),
  `Bearer …`, AWS access key ids (AKIA…/ASIA…), and every known secret VALUE registered by
  `register_secrets` (core/settings.py registers the Slack token and signing secret, the
  PagerDuty keys, the Redis URL's password; `configure_logging` also reads them and the AWS
  keys from the environment) wherever it appears.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from core.redaction import (
    REDACTED,
    SECRET_KEYS,
    forget_secrets,
    redact_text,
    register_secrets,
    secrets_from_env,
    url_password,
)

__all__ = [
    "REDACTED",
    "forget_secrets",
    "redact_text",
    "register_secrets",
    "secrets_from_env",
    "url_password",
]


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, BaseException):
        return redact_text(f"{type(value).__name__}: {value}")
    return value


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Mask values under secret-looking keys and secret-looking substrings anywhere."""
    for key in list(event_dict):
        if key in ("exc_info", "stack_info"):
            continue  # formatted later; the rendered line is redacted as a whole
        if SECRET_KEYS.search(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _redact_value(event_dict[key])
    return event_dict


class RedactingRenderer:
    """The last step of every chain: render, then redact the whole line (tracebacks included)."""

    def __init__(self, renderer: Processor) -> None:
        self._renderer = renderer

    def __call__(self, logger: WrappedLogger, name: str, event_dict: EventDict) -> str:
        rendered = self._renderer(logger, name, event_dict)
        if isinstance(rendered, bytes | bytearray):
            rendered = bytes(rendered).decode("utf-8", "replace")
        return redact_text(str(rendered))


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]


def configure_logging(
    fmt: str = "json",
    level: str = "info",
    stream: TextIO | None = None,
    secrets: Iterable[str | None] = (),
) -> None:
    """Configure structlog and the stdlib root logger once, at start-up.

    `secrets`: values to redact by value, besides those already registered and those read from
    the environment (SECRET_ENV, the REDIS_URL password)."""
    register_secrets([*secrets_from_env(), *secrets])
    numeric = logging.getLevelNamesMapping()[level.upper()]
    renderer: Processor
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        renderer = structlog.processors.JSONRenderer()

    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            RedactingRenderer(renderer),
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # Library chatter that is noise at info level.
    for noisy in ("botocore", "boto3", "urllib3", "aiohttp.access", "werkzeug"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))


def bind_request(**fields: Any) -> None:
    structlog.contextvars.bind_contextvars(**fields)


def clear_request() -> None:
    structlog.contextvars.clear_contextvars()


def contextvars_snapshot() -> MutableMapping[str, Any]:
    return structlog.contextvars.get_contextvars()
