"""Secret redaction for log lines: the shapes secrets take, and the secret values the process
knows (registered by core.settings at start-up), masked wherever they appear — also in their
JSON-escaped and percent-encoded forms. bot/logs.py applies it to every rendered line.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable, MutableMapping
from urllib.parse import quote, unquote, urlsplit

REDACTED = "[redacted]"
SECRET_KEYS = re.compile(
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
