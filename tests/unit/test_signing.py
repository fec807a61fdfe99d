"""sandbox.signing against Slack's real samples in tests/data/slack/."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl

import pytest
from slack_sdk.signature import SignatureVerifier

from sandbox.signing import (
    JSON_CONTENT_TYPE,
    block_actions_body,
    event_callback_body,
    sign,
    slash_command_body,
    url_verification_body,
    view_submission_body,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "slack"
SECRET = "sandbox-signing-secret"


def _keys(body: str) -> list[str]:
    return [k for k, _ in parse_qsl(body, keep_blank_values=True)]


def _slash(**overrides: str) -> str:
    fields = {
        "text": "deploy api v1.2.3 to prod",
        "user_id": "U0ALICE",
        "user_name": "alice",
        "channel_id": "C0DEPLOYS",
        "channel_name": "deploys",
        "response_url": "http://127.0.0.1:8080/response/abc",
    }
    fields.update(overrides)
    return slash_command_body(**fields)


def test_worked_example_reproduces_slacks_signature() -> None:
    example = json.loads((DATA / "slack-signing-worked-example.json").read_text())
    body = (DATA / "slack-signing-worked-example.body.txt").read_text()
    assert body == example["body"]
    ts = int(example["headers"]["X-Slack-Request-Timestamp"])
    headers = sign(example["signing_secret"], body, timestamp=ts)
    assert headers == example["headers"]
    # bytes and str bodies sign the same
    assert sign(example["signing_secret"], body.encode(), timestamp=ts) == headers


def test_slack_sdk_verifier_accepts_signed_body_and_rejects_a_changed_byte() -> None:
    body = _slash()
    headers = sign(SECRET, body)
    assert abs(int(headers["X-Slack-Request-Timestamp"]) - time.time()) < 5
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid(
        body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    )
    assert verifier.is_valid_request(body, headers)
    tampered = body[:-1] + ("x" if body[-1] != "x" else "y")
    assert len(tampered) == len(body)
    assert not verifier.is_valid(
        tampered, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    )
    assert not SignatureVerifier("another-secret").is_valid_request(body, headers)


def test_slash_command_body_matches_real_sample_keys_and_order() -> None:
    real = (DATA / "slash-command-body.modified-real.txt").read_text().strip()
    docs = (DATA / "slash-command-body.docs-example.txt").read_text().strip()
    real_keys = _keys(real)

    body = _slash(enterprise_id="E0DHANAM", enterprise_name="Dhanam Org")
    assert _keys(body) == real_keys
    assert set(_keys(body)) == set(_keys(docs))

    # a non-Grid workspace: the same fields, same order, without the enterprise pair
    plain = _slash()
    assert _keys(plain) == [k for k in real_keys if not k.startswith("enterprise_")]


def test_slash_command_body_round_trips_and_encodes_like_slack() -> None:
    body = _slash(text="scale api 4", trigger_id="111.222.abc")
    parsed = parse_qs(body, keep_blank_values=True)
    assert parsed["command"] == ["/dhanam"]
    assert parsed["text"] == ["scale api 4"]
    assert parsed["user_id"] == ["U0ALICE"]
    assert parsed["team_id"] == ["T0DHANAM"]
    assert parsed["team_domain"] == ["dhanam"]
    assert parsed["api_app_id"] == ["A0DHANAM"]
    assert parsed["trigger_id"] == ["111.222.abc"]
    assert parsed["response_url"] == ["http://127.0.0.1:8080/response/abc"]
    assert all(len(v) == 1 for v in parsed.values())
    # Slack's encoding, as in the real sample: "/" -> %2F, space -> "+", empty text kept
    assert "command=%2Fdhanam" in body
    assert "text=scale+api+4" in body
    assert "response_url=http%3A%2F%2F127.0.0.1%3A8080%2Fresponse%2Fabc" in body
    assert "&text=&" in _slash(text="")
    # generated trigger ids look like Slack's: digits.digits.hex
    trigger = parse_qs(_slash())["trigger_id"][0].split(".")
    assert len(trigger) == 3
    assert trigger[0].isdigit()
    assert trigger[1].isdigit()
    int(trigger[2], 16)


def _message() -> dict[str, object]:
    return {
        "ts": "1700000000.000100",
        "text": "Deploy api v1.2.3 to prod? Needs a second approver.",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Deploy?"}}],
        "user": "U0BOT",
        "bot_id": "B0BOT",
    }


def test_block_actions_body_has_the_docs_example_shape() -> None:
    docs = json.loads((DATA / "block_actions-payload.docs-example.json").read_text())
    body = block_actions_body(
        user_id="U0BOB",
        user_name="bob",
        channel_id="C0DEPLOYS",
        channel_name="deploys",
        message=_message(),
        action_id="approve",
        block_id="approval:42",
        value="42",
        button_text="Approve",
        response_url="http://127.0.0.1:1/response/x",
        action_ts="1700000001.000200",
    )
    pairs = parse_qsl(body)
    assert [k for k, _ in pairs] == ["payload"]
    payload = json.loads(pairs[0][1])
    assert set(docs) <= set(payload)
    assert set(payload) - set(docs) == {"enterprise", "is_enterprise_install", "state"}
    assert list(payload) == [
        "type", "user", "api_app_id", "token", "container", "trigger_id", "team",
        "enterprise", "is_enterprise_install", "channel", "message", "state",
        "response_url", "actions",
    ]  # fmt: skip
    assert payload["type"] == "block_actions"
    assert payload["container"] == {
        "type": "message",
        "message_ts": "1700000000.000100",
        "channel_id": "C0DEPLOYS",
        "is_ephemeral": False,
    }
    assert set(payload["user"]) >= set(docs["user"])
    assert set(payload["team"]) == set(docs["team"])
    assert set(payload["channel"]) == set(docs["channel"])
    assert payload["channel"] == {"id": "C0DEPLOYS", "name": "deploys"}
    action = payload["actions"][0]
    assert list(action) == list(docs["actions"][0])
    assert action["text"] == {"type": "plain_text", "text": "Approve", "emoji": True}
    assert action["value"] == "42"
    assert action["action_ts"] == "1700000001.000200"
    assert payload["message"]["ts"] == "1700000000.000100"
    assert payload["message"]["blocks"] == _message()["blocks"]
    assert payload["state"] == {"values": {}}
    assert payload["enterprise"] is None
    # Slack escapes "/" inside its JSON; parsers must cope (json does)
    assert "\\/" in pairs[0][1]
    assert payload["response_url"] == "http://127.0.0.1:1/response/x"


def test_block_actions_requires_ts_blocks_text() -> None:
    msg = _message()
    del msg["blocks"]
    with pytest.raises(ValueError, match="blocks"):
        block_actions_body(
            user_id="U0BOB",
            user_name="bob",
            channel_id="C0OPS",
            channel_name="ops",
            message=msg,
            action_id="a",
            block_id="b",
            value="v",
            button_text="B",
            response_url="http://x/",
        )


def test_event_callback_and_json_signing() -> None:
    event = {"type": "app_mention", "user": "U0ALICE", "text": "<@U0BOT> status", "ts": "1.2"}
    body = event_callback_body(event, event_id="Ev0TEST", event_time=1700000000)
    parsed = json.loads(body)
    assert parsed["type"] == "event_callback"
    assert parsed["event"] == event
    assert parsed["team_id"] == "T0DHANAM"
    assert parsed["api_app_id"] == "A0DHANAM"
    assert parsed["event_id"] == "Ev0TEST"
    assert parsed["event_time"] == 1700000000
    headers = sign(SECRET, body, content_type=JSON_CONTENT_TYPE)
    assert headers["Content-Type"] == "application/json"
    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    assert json.loads(url_verification_body("chal"))["challenge"] == "chal"


def test_view_submission_body() -> None:
    values = {"reason": {"reason_input": {"type": "plain_text_input", "value": "db restore"}}}
    body = view_submission_body(
        user_id="U0CAROL",
        user_name="carol",
        view={"type": "modal", "callback_id": "restore", "private_metadata": '{"id":1}'},
        values=values,
    )
    payload = json.loads(parse_qs(body)["payload"][0])
    assert payload["type"] == "view_submission"
    assert payload["view"]["callback_id"] == "restore"
    assert payload["view"]["state"]["values"] == values
    assert payload["view"]["private_metadata"] == '{"id":1}'
    assert payload["user"]["id"] == "U0CAROL"
