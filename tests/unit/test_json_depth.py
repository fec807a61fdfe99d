"""The guard's JSON depth scanner, the Slack shape check and the PagerDuty signature compare."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.guard import MAX_JSON_DEPTH, PAGERDUTY_ROUTE, SLACK_ROUTE, SNS_ROUTE, body_too_deep
from bot.guard import json_too_deep as too_deep
from bot.slack_app import shape_problem
from integrations.pagerduty_webhooks import signature_valid

FORM = "application/x-www-form-urlencoded"
TEXT = "text/plain"


def nested(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


def objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("depth", [0, 1, 63, 64])
def test_up_to_the_limit_is_fine(depth: int) -> None:
    assert not too_deep(nested(depth))
    assert not too_deep(objects(depth))


@pytest.mark.parametrize("depth", [65, 1000, 10_000, 200_000])
def test_over_the_limit_is_too_deep(depth: int) -> None:
    assert too_deep(nested(depth))
    assert too_deep(objects(depth))
    assert too_deep(nested(depth).encode())


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"text": "[" * 1000 + '\\"{' * 500, "x": ["]" * 70]})
    assert not too_deep(text)
    assert not too_deep('["\\\\", ' + '"[' * 10 + "]")


def test_unterminated_input_is_judged_not_parsed() -> None:
    assert too_deep("[" * 65)  # malformed and deep: refused either way
    assert not too_deep('"' + "[" * 100)  # one unterminated string


def test_shallow_but_long_is_fast() -> None:
    body = "[" + ",".join(["[1]"] * 200_000) + "]"
    started = time.perf_counter()
    assert not too_deep(body)
    assert time.perf_counter() - started < 2.0


@given(st.recursive(st.none() | st.integers() | st.text(), lambda c: st.lists(c, max_size=3)))
@settings(max_examples=200, deadline=None)
def test_agrees_with_the_real_depth(value: object) -> None:
    def depth(v: object) -> int:
        return 1 + max((depth(x) for x in v), default=0) if isinstance(v, list) else 0

    text = json.dumps(value)
    assert too_deep(text, limit=3) == (depth(value) > 3)


def test_routes_look_where_their_json_is() -> None:
    deep = nested(100)
    assert body_too_deep(SLACK_ROUTE, deep.encode())
    assert body_too_deep(SLACK_ROUTE, f"payload={quote(deep)}".encode())
    assert not body_too_deep(SLACK_ROUTE, f"text={quote(deep)}".encode())  # a slash command
    assert body_too_deep(PAGERDUTY_ROUTE, deep.encode())
    sns = {"Type": "Notification", "Message": deep}
    assert body_too_deep(SNS_ROUTE, json.dumps(sns).encode())
    sns["Message"] = "[" * 100 + " plain text"
    assert not body_too_deep(SNS_ROUTE, json.dumps({"Message": "not json " + deep}).encode())
    assert not body_too_deep(SNS_ROUTE, b"\xff\xfe{")
    assert not body_too_deep(SLACK_ROUTE, b"payload=" + nested(MAX_JSON_DEPTH).encode())


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"type": "event_callback", "event": "str"}', "application/json"),
        ('{"type": "event_callback", "event": ["a"]}', "application/json"),
        ('{"type": "event_callback"}', "application/json"),
        ('{"type": "event_callback", "event": {"type": 3}}', "application/json"),
        ("[1, 2]", "application/json"),
        ('"str"', "application/json"),
        ("payload=%5B1%5D", FORM),
        ('payload={"type": "block_actions", "user": ["U1"]}', FORM),
        (
            'payload={"type": "block_actions", "actions": {"a": 1}}',
            "application/x-www-form-urlencoded",
        ),
        (
            'payload={"type": "block_actions", "actions": ["x"]}',
            "application/x-www-form-urlencoded",
        ),
        (
            'payload={"type": "block_actions", "channel": {"id": 5}}',
            "application/x-www-form-urlencoded",
        ),
        ('{"type": ["url_verification"]}', "application/json"),
        ("{not json", "application/json"),
        # found by bench/fuzz.py at 20,000 signed examples: Bolt answered 500 to these
        ('{"event": null, "view": null}', "application/json"),
        ('payload={"view": null, "type": "view_submission"}', FORM),
        ('payload={"type": "block_actions", "actions": [{"block_id": "b"}]}', FORM),
        ('payload={"type": "block_actions", "actions": [{"action_id": 7}]}', FORM),
        ('payload={"type": "block_actions", "actions": []}', FORM),
        # says neither what it is nor which command: no request Slack sends
        ("", FORM),
        ("a=b", FORM),
        ('{"type": ""}', "application/json"),
        ("{}", "application/json"),
    ],
)
def test_wrong_shapes_are_named(body: str, content_type: str) -> None:
    assert shape_problem(body, content_type) is not None


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("ssl_check=1&token=t", FORM),
        ("command=%2Fdhanam&text=help&user_id=U1", FORM),
        ('{"type": "url_verification", "challenge": "c"}', "application/json"),
        (
            '{"type": "view_submission", "enterprise": null, "team": null, "view": {}}',
            "application/json",
        ),
        (
            '{"type": "event_callback", "event": {"type": "app_mention", "user": "U1"}}',
            "text/plain",
        ),
        (
            'payload={"type": "block_actions", "user": {"id": "U1"}, '
            '"actions": [{"action_id": "approve"}]}',
            TEXT,
        ),
    ],
)
def test_slack_shapes_pass(body: str, content_type: str) -> None:
    assert shape_problem(body, content_type) is None


def test_pagerduty_signature_with_non_ascii_is_false_not_typeerror() -> None:
    body = b'{"event": {}}'
    good = "v1=" + hmac.new(b"s", body, hashlib.sha256).hexdigest()
    assert signature_valid(body, good, ["s"])
    assert signature_valid(body, "v1=\u00e9\u00e9, v1=" + good[3:].upper(), ["s"])
    assert not signature_valid(body, "v1=\u00e9" + good[4:], ["s"])
    assert not signature_valid(body, "v1=\udcff", ["s"])
    assert not signature_valid(body, "v1=caf\u00e9", ["s"])
