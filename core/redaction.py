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
# Secret-looking substrings, each replaced as a whole.
_SHAPES = re.compile(
    "|".join(
        (
            # Slack tokens: xoxb-, xoxp-, xoxa-, xoxr-, xoxs-, xoxo-, xoxe-, xoxe.xoxp-, xapp-
            r"\bxox[a-z](?:\.xox[a-z])?-[A-Za-z0-9-]+",
            r"\bxapp-[A-Za-z0-9-]+",
            # AWS access key ids (long-term and temporary)
            r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",
            # JWTs (and 5-part JWEs): base64url JSON header `{"…` = `eyJ`, then 2-4 more parts
            r"\beyJ[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*){2,4}",
            # Stripe secret and restricted keys, webhook signing secrets
            r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}",
            r"\bwhsec_[A-Za-z0-9+/=]{10,}",
            # Plaid access and public tokens
            r"\b(?:access|public)-(?:production|sandbox|development)-[A-Za-z0-9-]{8,}",
            # GitHub tokens: classic (ghp_, gho_, ghu_, ghs_, ghr_) and fine-grained
            r"\bgh[pousr]_[A-Za-z0-9]{20,}",
            r"\bgithub_pat_[A-Za-z0-9_]{20,}",
        )
    )
)
# An AWS access key id with a 40-character secret access key after it on the line (the way
# credentials are printed in pairs): both go, whatever the secret's characters.
_AWS_PAIR = re.compile(
    r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b(?P<gap>[^\n]{0,80}?)"
    r"(?<![A-Za-z0-9/+=_-])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=_-])"
)
# A bare 40-character run that looks like an AWS secret access key (see `_looks_aws_secret`).
_BARE_40 = re.compile(r"(?<![A-Za-z0-9/+_-])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=_-])")
# user:password@ in a URL: the password goes, the scheme, user and host stay. The password may
# hold `@` and `/` (unencoded, as people write them): it runs to the last `@` before any `?`
# or `#` (so `user:p@ss/w@host/x?to=a@b` masks `p@ss/w`; an `@` in a path with no query is
# masked with it: too much rather than too little). A `host:PORT/…@…` (digits, then a path)
# is a port, not a password.
_URL_PASSWORD = re.compile(
    r"(?P<keep>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/@\s:\"'\\]*:)(?!\d+(?:[/?#]|$))[^\s\"'\\?#]+@"
)
# Key names that announce a secret, matched whatever the case and separator (`api_key`,
# `apiKey`, `api-key`, `X-Api-Key`, `API.KEY`); short ones (pass, pwd, jwt) only as a whole
# word or a `_`/`-`-separated part (`DB_PASS`, `pwd`; never `passenger`, `bypass`).
_SEP = r"[ _.-]?"
_KEY_NAME = (
    r"(?:[\w-]*(?:token|secret|pass" + _SEP + r"word|passwd|pass" + _SEP + r"phrase|signature"
    r"|(?:routing|api|access|private|secret|client|encryption|signing)" + _SEP + r"key"
    r")[\w-]*"
    r"|(?:[\w-]*[_-])?(?:pass|pwd|jwt)(?![\w-]))"
)
# key=value, key: value, "key": "value", 'key': 'value', \"key\": \"value\" where the key names
# a secret. A quoted value is masked up to its closing quote, escaped quotes (`\"`) included;
# the quotes stay, so a JSON line stays JSON.
_KEYED = re.compile(
    rf"(?P<keep>\b{_KEY_NAME}(?:\\?[\"'])?\s*[:=]\s*)(?!\[redacted\])"
    r"(?:"
    r"\"(?P<dq>(?![\s,])(?:[^\"\\\n]|\\.)+)\"(?=\s*(?:[,}\]);&]|$))"
    r"|'(?P<sq>(?![\s,])(?:[^'\\\n]|\\.)+)'(?=\s*(?:[,}\]);&]|$))"
    # \"…\": a quoted value inside a JSON string; `\\\"` in it is an escaped quote, `\\\\` a
    # backslash
    r"|\\\"(?P<eq>(?:\\\\\\\"|\\\\|\\[^\"\\\n]|[^\\\n])+)\\\""
    rf"|(?P<bare>[\"']?(?!\[redacted\]){_VALUE_CHARS}+)"
    r")",
    re.I,
)
_BEARER = re.compile(r"(?P<keep>\b(?:Bearer|Basic|Token)\s+)(?!token=)[A-Za-z0-9._~+/=-]{8,}")


def _looks_aws_secret(run: str) -> bool:
    """Whether a bare 40-character run of `[A-Za-z0-9/+]` is taken for an AWS secret access key:
    it must hold an uppercase letter, a lowercase letter and a digit, and at most two `/`.
    A git SHA or any hex digest (no uppercase, or no lowercase) and a UUID (dashes) never
    qualify; a path of 40 characters usually has more than two `/`. The cost of a wrong guess
    is a masked token; about 97% of random AWS secrets qualify (none are missed when printed
    after their AKIA/ASIA key id: `_AWS_PAIR`)."""
    return (
        any(c.isupper() for c in run)
        and any(c.islower() for c in run)
        and any(c.isdigit() for c in run)
        and run.count("/") <= 2
    )


def _keyed(match: re.Match[str]) -> str:
    keep = match["keep"]
    if match["dq"] is not None:
        return f'{keep}"{REDACTED}"'
    if match["sq"] is not None:
        return f"{keep}'{REDACTED}'"
    if match["eq"] is not None:
        return f'{keep}\\"{REDACTED}\\"'
    bare = match["bare"]
    quote_ = bare[0] if bare[0] in "\"'" else ""
    return keep + quote_ + REDACTED


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
    text = _AWS_PAIR.sub(lambda m: REDACTED + m["gap"] + REDACTED, text)
    text = _SHAPES.sub(REDACTED, text)
    text = _BARE_40.sub(lambda m: REDACTED if _looks_aws_secret(m[0]) else m[0], text)
    text = _URL_PASSWORD.sub(lambda m: m["keep"] + REDACTED + "@", text)
    text = _KEYED.sub(_keyed, text)
    return _BEARER.sub(lambda m: m["keep"] + REDACTED, text)
