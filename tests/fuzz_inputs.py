"""Hostile HTTP requests for the bot's routes, as hypothesis strategies.

Shared by the CI fuzz tests (tests/scenario/test_http_fuzz.py, a few hundred examples per
route) and bench/fuzz.py (100,000 per route against a running sandbox bot). A ``Case`` is one
request; ``verified`` says whether the bot should find it genuinely signed (unverified ones
must change nothing: no Slack write, no AWS mutation).

Bodies: random bytes; JSON of any shape (keys drawn partly from the ones the routes read);
JSON nested up to 10,000 levels, bare or inside a plausible envelope; Slack form bodies with
such a ``payload``; and the real samples of tests/data mutated (bytes flipped, cut, spliced;
a value replaced by arbitrary JSON). Headers: missing, forged, stale, and non-ASCII.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from hypothesis import strategies as st

DATA = Path(__file__).resolve().parent / "data"
FORM = "application/x-www-form-urlencoded"

SLACK = "/slack/events"
SNS = "/webhooks/sns"
PAGERDUTY = "/webhooks/pagerduty"

KEYS = (
    "type",
    "event",
    "payload",
    "user",
    "user_id",
    "channel",
    "channel_id",
    "actions",
    "team",
    "container",
    "view",
    "message",
    "event_id",
    "command",
    "text",
    "response_url",
    "authorizations",
    "Type",
    "Message",
    "MessageId",
    "TopicArn",
    "Signature",
    "SigningCertURL",
    "SubscribeURL",
    "Timestamp",
    "event_type",
    "data",
    "id",
    "incident",
    "service",
    "assignees",
    "AlarmName",
    "NewStateValue",
    "Trigger",
)


@dataclass(frozen=True)
class Case:
    route: str
    body: bytes
    headers: dict[str, str]
    verified: bool
    kind: str  # what generated it, for the bench's breakdown


@dataclass(frozen=True)
class Secrets:
    slack: str
    pagerduty: str


def _samples(*patterns: str) -> list[bytes]:
    found: list[bytes] = []
    for pattern in patterns:
        found += [p.read_bytes() for p in sorted(DATA.glob(pattern))]
    return found


SLACK_SAMPLES = _samples(
    "slack/slash-command-body*.txt", "slack/slack-signing-worked-example.body.txt"
)
SLACK_PAYLOADS = _samples("slack/block_actions-payload*.json")
SNS_SAMPLES = _samples("aws-sns/sns-*.json", "cloudwatch/*sns-http-body*.json")
PAGERDUTY_SAMPLES = _samples(
    "pagerduty/webhook-v3-*.body.json", "pagerduty/webhook-v3-*example.json"
)

# -- values --------------------------------------------------------------------------------
header_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40
)  # aiohttp's client refuses control characters; non-ASCII is what matters here
non_ascii = st.text(
    st.characters(min_codepoint=0x80, blacklist_categories=("Cs", "Cc")), min_size=1
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=25,
)
json_text = json_values.map(json.dumps)


def nest(depth: int, style: str) -> str:
    if style == "[":
        return "[" * depth + "]" * depth
    if style == "{":
        return '{"a":' * depth + "1" + "}" * depth
    return '[{"event":' * (depth // 2) + "0" + "}]" * (depth // 2)


deep_json = st.builds(
    nest, st.sampled_from([65, 100, 1000, 10_000]) | st.integers(60, 3000), st.sampled_from("[{m")
)
deep_in_envelope = st.builds(
    lambda inner, key: (
        json.dumps({"type": "event_callback", "Type": "Notification"})[:-1]
        + f', "{key}": {inner}}}'
    ),
    deep_json,
    st.sampled_from(("event", "Message", "event_type", "payload", "data")),
)
any_json = json_text | deep_json | deep_in_envelope


_PLACEHOLDER = "\u0000deep\u0000"


@st.composite
def mutated(draw: st.DrawFn, samples: list[bytes]) -> bytes:
    """A real sample, changed a little: at the byte level or one JSON value replaced."""
    raw = bytearray(draw(st.sampled_from(samples)))
    how = draw(st.sampled_from(["flip", "cut", "splice", "value", "value", "truncate"]))
    if how == "value":
        try:
            document = json.loads(raw)
        except ValueError:
            document = None
        if isinstance(document, dict) and document:
            key = draw(st.sampled_from(sorted(document)))
            target = document
            if isinstance(document[key], dict) and document[key] and draw(st.booleans()):
                target = document[key]
                key = draw(st.sampled_from(sorted(target)))
            deep = draw(st.none() | deep_json)
            target[key] = draw(json_values) if deep is None else _PLACEHOLDER
            # A deep value is spliced in as text: json.dumps would recurse into it.
            text = json.dumps(document).replace(json.dumps(_PLACEHOLDER), deep or "null")
            return text.encode()
        how = "flip"
    if not raw:
        return bytes(draw(st.binary(max_size=64)))
    at = draw(st.integers(0, len(raw) - 1))
    if how == "flip":
        raw[at] ^= 1 << draw(st.integers(0, 7))
    elif how == "cut":
        del raw[at : at + draw(st.integers(1, 64))]
    elif how == "truncate":
        del raw[at:]
    else:
        raw[at:at] = draw(st.binary(min_size=1, max_size=64) | st.sampled_from([b"{", b"[", b'"']))
    return bytes(raw)


def _slack_form(payload: str) -> bytes:
    return ("payload=" + quote(payload)).encode()


slack_bodies = (
    st.binary(max_size=512)
    | any_json.map(str.encode)
    | any_json.map(_slack_form)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), st.text(max_size=40), max_size=8)
    .map(urlencode)
    .map(str.encode)
    | mutated(SLACK_SAMPLES)
    | mutated(SLACK_PAYLOADS).map(lambda raw: _slack_form(raw.decode("utf-8", "replace")))
)
webhook_bodies = st.binary(max_size=512) | any_json.map(str.encode)
sns_bodies = webhook_bodies | mutated(SNS_SAMPLES)
pagerduty_bodies = webhook_bodies | mutated(PAGERDUTY_SAMPLES)
content_types = st.sampled_from([FORM, "application/json", "text/plain; charset=UTF-8", ""])


def slack_signature(secret: str, body: bytes, timestamp: str) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def pagerduty_signature(secret: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _with_content_type(headers: dict[str, str], content_type: str) -> dict[str, str]:
    return headers | ({"Content-Type": content_type} if content_type else {})


# -- Slack -----------------------------------------------------------------------------------
@st.composite
def slack_cases(draw: st.DrawFn, secrets: Secrets, *, signed: bool) -> Case:
    body = draw(slack_bodies)
    content_type = draw(content_types)
    now = str(int(time.time()))
    if signed:
        headers = {
            "X-Slack-Request-Timestamp": now,
            "X-Slack-Signature": slack_signature(secrets.slack, body, now),
        }
        return Case(SLACK, body, _with_content_type(headers, content_type), True, "signed")
    kind = draw(st.sampled_from(["none", "wrong-secret", "stale", "non-ascii", "garbage"]))
    headers = {}
    if kind == "wrong-secret":
        headers = {
            "X-Slack-Request-Timestamp": now,
            "X-Slack-Signature": slack_signature("not-" + secrets.slack, body, now),
        }
    elif kind == "stale":
        old = str(int(time.time()) - 301 - draw(st.integers(0, 10**6)))
        headers = {
            "X-Slack-Request-Timestamp": old,
            "X-Slack-Signature": slack_signature(secrets.slack, body, old),
        }
    elif kind == "non-ascii":
        good = slack_signature(secrets.slack, body, now)
        headers = draw(
            st.sampled_from(
                [
                    {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": good[:-1] + "\u00e9"},
                    {"X-Slack-Request-Timestamp": now + "\u0661", "X-Slack-Signature": good},
                    {"X-Slack-Request-Timestamp": "\u0661" * 10, "X-Slack-Signature": good},
                ]
            )
            | st.fixed_dictionaries(
                {"X-Slack-Request-Timestamp": non_ascii, "X-Slack-Signature": non_ascii}
            )
        )
    elif kind == "garbage":
        headers = draw(
            st.fixed_dictionaries(
                {"X-Slack-Request-Timestamp": header_text, "X-Slack-Signature": header_text}
            )
        )
    return Case(SLACK, body, _with_content_type(headers, content_type), False, kind)


# -- PagerDuty -------------------------------------------------------------------------------
@st.composite
def pagerduty_cases(draw: st.DrawFn, secrets: Secrets, *, signed: bool) -> Case:
    body = draw(pagerduty_bodies)
    headers = {"Content-Type": "application/json"}
    if signed:
        extra = draw(st.sampled_from(["", ", v1=" + "0" * 64, ",v1=\u00e9"]))
        signature = pagerduty_signature(secrets.pagerduty, body) + extra
        return Case(PAGERDUTY, body, headers | {"X-PagerDuty-Signature": signature}, True, "signed")
    kind = draw(st.sampled_from(["none", "wrong-secret", "non-ascii", "garbage"]))
    if kind == "wrong-secret":
        headers["X-PagerDuty-Signature"] = pagerduty_signature("x" + secrets.pagerduty, body)
    elif kind == "non-ascii":
        headers["X-PagerDuty-Signature"] = "v1=" + draw(non_ascii)
    elif kind == "garbage":
        headers["X-PagerDuty-Signature"] = draw(header_text)
    return Case(PAGERDUTY, body, headers, False, kind)


# -- SNS ---------------------------------------------------------------------------------------
def sns_headers(draw: st.DrawFn) -> dict[str, str]:
    headers = {"Content-Type": "text/plain; charset=UTF-8"}
    choice = draw(st.sampled_from(["plain", "typed", "non-ascii"]))
    if choice == "typed":
        headers["x-amz-sns-message-type"] = draw(
            st.sampled_from(["Notification", "SubscriptionConfirmation"]) | header_text
        )
    elif choice == "non-ascii":
        name = draw(st.sampled_from(["x-amz-sns-message-type", "x-amz-sns-topic-arn"]))
        headers[name] = draw(non_ascii)
    return headers


@st.composite
def sns_unsigned_cases(draw: st.DrawFn) -> Case:
    return Case(SNS, draw(sns_bodies), sns_headers(draw), False, "unsigned")


@st.composite
def sns_signed_cases(draw: st.DrawFn, signer: Any, topic: str) -> Case:
    """Signed by the sandbox's SNS signer (whose certificate the bot trusts): any Message.
    ``tamper`` changes it after signing (then it is unverified)."""
    message = draw(st.text(max_size=200) | any_json)
    subject = draw(st.none() | st.text(max_size=40))
    body: dict[str, Any] = signer.notification(topic, message, subject)
    tamper = draw(st.sampled_from(["none", "none", "none", "message", "field"]))
    if tamper == "message":
        body["Message"] = message + draw(st.text(min_size=1, max_size=5))
    elif tamper == "field":
        body[draw(st.sampled_from(["MessageId", "Timestamp", "Signature", "Type"]))] = draw(
            json_values
        )
    return Case(
        SNS,
        json.dumps(body).encode(),
        {"Content-Type": "text/plain; charset=UTF-8"},
        tamper == "none",
        "signed" if tamper == "none" else f"tampered-{tamper}",
    )


def get_cases() -> st.SearchStrategy[tuple[str, str, dict[str, str]]]:
    """GET /health and /metrics with query strings and odd headers; other methods too."""
    return st.tuples(
        st.sampled_from(["/health", "/metrics", "/health?" + "x" * 10]),
        st.sampled_from(["GET", "GET", "HEAD", "POST", "PUT", "DELETE"]),
        st.dictionaries(
            st.sampled_from(["X-Request-Id", "Accept", "X-Forwarded-For", "If-None-Match"]),
            header_text,
            max_size=3,
        ),
    )
