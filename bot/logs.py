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
  `register_secrets` (bot/settings.py registers the Slack token and signing secret, the
  PagerDuty keys, the Redis URL's password; `configure_logging` also reads them and the AWS
  keys from the environment) wherever it appears.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO
from urllib.parse import quote, unquote, urlsplit

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[redacted]"
_SECRET_KEYS = re.compile(
    r"(token|secret|password|passwd|authorization|signature|api_key|routing_key|access_key)",
    re.I,
)
_VALUE_CHARS = r"[^\s\"'\\,;&}\]<>]"  # never crosses a JSON/repr quote or an escape
# Secret-looking substrings, each replaced as a whole (group "keep" survives).
_SHAPES = re.compile(
    "|".join(
        (
            # Slack tokens: xoxb-, xoxp-, xoxa-, xoxr-, xoxs-, xoxo-, xoxe-, xoxe.xoxp-, xapp-
            r"\bxox[a-z](?:\.xox[a-z])?-[A-Za-z0-9-]+",
            r"\bxapp-[A-Za-z0-9-]+",
            # AWS access key ids (long-term and temporary)
            r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",
        )
    )
)
# user:password@ in a URL: the password goes, the scheme, user and host stay.
_URL_PASSWORD = re.compile(r"(?P<keep>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/@\s:\"'\\]*:)[^/@\s\"'\\]+@")
# key=value, key: value, "key": "value", 'key': 'value' where the key names a secret.
_KEYED = re.compile(
    r"(?P<keep>\b[\w-]*(?:token|secret|password|passwd|routing_key|api_key|access_key|"
    r"signature|private_key)[\w-]*[\"']?\s*[:=]\s*[\"']?)"
    rf"(?!\[redacted\]){_VALUE_CHARS}+",
    re.I,
)
_BEARER = re.compile(r"(?P<keep>\b(?:Bearer|Basic|Token)\s+)(?!token=)[A-Za-z0-9._~+/=-]{8,}")

_MIN_SECRET = 6  # shorter known values would redact ordinary words
_MAX_KNOWN = 256


class _KnownSecrets:
    """The registered secret values (insertion-ordered, bounded) and one pattern for them."""

    def __init__(self) -> None:
        self.values: dict[str, None] = {}
        self.pattern: re.Pattern[str] | None = None
        self.lock = threading.Lock()

    def add(self, values: Iterable[str | None]) -> None:
        with self.lock:
            before = len(self.values)
            for value in values:
                if not value or len(value) < _MIN_SECRET:
                    continue
                forms = {
                    value,
                    json.dumps(value)[1:-1],
                    json.dumps(value, ensure_ascii=False)[1:-1],
                    quote(value, safe=""),
                }
                for form in forms:
                    self.values.pop(form, None)
                    self.values[form] = None
            while len(self.values) > _MAX_KNOWN:
                del self.values[next(iter(self.values))]
            if len(self.values) != before or self.pattern is None:
                self._compile()

    def clear(self) -> None:
        with self.lock:
            self.values.clear()
            self.pattern = None

    def _compile(self) -> None:
        ordered = sorted(self.values, key=len, reverse=True)
        self.pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None


_known = _KnownSecrets()

# Environment variables whose values are secrets, whatever loaded them.
SECRET_ENV = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "PAGERDUTY_ROUTING_KEY",
    "PAGERDUTY_API_TOKEN",
    "PAGERDUTY_WEBHOOK_SECRET",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)


def url_password(url: str) -> str | None:
    """The password of a `scheme://user:password@host` URL, or None."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def secrets_from_env(environ: MutableMapping[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    values: list[str] = []
    for name in SECRET_ENV:
        raw = env.get(name, "")
        values.extend(part.strip() for part in raw.split(",") if part.strip())
        if raw.strip():
            values.append(raw.strip())
    password = url_password(env.get("REDIS_URL", ""))
    if password:
        values.append(password)
    return values


def register_secrets(values: Iterable[str | None]) -> None:
    """Remember secret values: they are redacted wherever they appear in a log line, also in
    their JSON-escaped and percent-encoded forms."""
    _known.add(values)


def forget_secrets() -> None:
    """Drop every registered value (tests)."""
    _known.clear()


def redact_text(text: str) -> str:
    """`text` with every known secret value and every secret-looking substring masked."""
    pattern = _known.pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    text = _SHAPES.sub(REDACTED, text)
    text = _URL_PASSWORD.sub(lambda m: m["keep"] + REDACTED + "@", text)
    text = _KEYED.sub(lambda m: m["keep"] + REDACTED, text)
    return _BEARER.sub(lambda m: m["keep"] + REDACTED, text)


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
        if _SECRET_KEYS.search(key):
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
