"""Build and sign requests the way Slack sends them to the bot (tests and sandbox console).

Bodies follow the real samples in tests/data/slack/: slash commands are form bodies
with Slack's field order and percent-encoding; interactivity payloads arrive as
``payload=<urlencoded JSON>``; Events API callbacks are JSON. Slack escapes ``/`` as
``\\/`` inside its JSON payloads, and so do we, so parsers meet the real thing.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"
SANDBOX_VERIFICATION_TOKEN = "dhanamSandboxVerifyToken"  # noqa: S105 - legacy field, unused
DEFAULT_TEAM_ID = "T0DHANAM"
DEFAULT_TEAM_DOMAIN = "dhanam"
DEFAULT_APP_ID = "A0DHANAM"


def sign(
    secret: str,
    body: str | bytes,
    timestamp: int | None = None,
    content_type: str = FORM_CONTENT_TYPE,
) -> dict[str, str]:
    """The headers Slack adds to a request: timestamp, ``v0=`` signature, content type.

    ``timestamp`` defaults to now (a verifier rejects anything older than 5 minutes).
    """
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    if signature is None:  # only when the timestamp is None, which it is not
        raise ValueError("could not sign the request")
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
        "Content-Type": content_type,
    }


def new_trigger_id() -> str:
    """A trigger_id shaped like Slack's: ``<digits>.<digits>.<32 hex>``."""
    return (
        f"{secrets.randbelow(10**12):012d}.{secrets.randbelow(10**12):012d}.{secrets.token_hex(16)}"
    )


def _action_ts() -> str:
    now = time.time()
    return f"{int(now)}.{int((now % 1) * 1_000_000):06d}"


def _slack_json(payload: dict[str, Any]) -> str:
    """Compact JSON with ``/`` escaped as ``\\/``, as Slack writes its payloads."""
    return json.dumps(payload, separators=(",", ":")).replace("/", "\\/")


def slash_command_body(
    *,
    text: str,
    user_id: str,
    user_name: str,
    channel_id: str,
    channel_name: str,
    response_url: str,
    command: str = "/dhanam",
    team_id: str = DEFAULT_TEAM_ID,
    team_domain: str = DEFAULT_TEAM_DOMAIN,
    trigger_id: str | None = None,
    api_app_id: str = DEFAULT_APP_ID,
    token: str = SANDBOX_VERIFICATION_TOKEN,
    enterprise_id: str | None = None,
    enterprise_name: str | None = None,
) -> str:
    """A slash-command form body, with the fields in the order Slack sends them today
    (tests/data/slack/slash-command-body.modified-real.txt); the enterprise fields appear
    only for an Enterprise Grid workspace, i.e. when ``enterprise_id`` is given."""
    fields: list[tuple[str, str]] = [
        ("token", token),
        ("team_id", team_id),
        ("team_domain", team_domain),
        ("channel_id", channel_id),
        ("channel_name", channel_name),
        ("user_id", user_id),
        ("user_name", user_name),
        ("command", command),
        ("text", text),
        ("api_app_id", api_app_id),
    ]
    if enterprise_id is not None:
        fields += [("enterprise_id", enterprise_id), ("enterprise_name", enterprise_name or "")]
    fields += [
        ("response_url", response_url),
        ("trigger_id", trigger_id or new_trigger_id()),
    ]
    return urlencode(fields)


def _user(user_id: str, user_name: str, team_id: str) -> dict[str, str]:
    return {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id}


def block_actions_body(
    *,
    user_id: str,
    user_name: str,
    channel_id: str,
    channel_name: str,
    message: dict[str, Any],
    action_id: str,
    block_id: str,
    value: str,
    button_text: str,
    response_url: str,
    is_ephemeral: bool = False,
    team_id: str = DEFAULT_TEAM_ID,
    trigger_id: str | None = None,
    api_app_id: str = DEFAULT_APP_ID,
    action_ts: str | None = None,
    team_domain: str = DEFAULT_TEAM_DOMAIN,
    token: str = SANDBOX_VERIFICATION_TOKEN,
) -> str:
    """A button click on ``message`` (which must carry ``ts``, ``blocks`` and ``text``),
    as the ``payload=<urlencoded JSON>`` form body Slack posts."""
    missing = [k for k in ("ts", "blocks", "text") if k not in message]
    if missing:
        raise ValueError(f"message lacks {', '.join(missing)}")
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user(user_id, user_name, team_id),
        "api_app_id": api_app_id,
        "token": token,
        "container": {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        },
        "trigger_id": trigger_id or new_trigger_id(),
        "team": {"id": team_id, "domain": team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name},
        "message": {"type": "message", **message},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": button_text, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": action_ts or _action_ts(),
            }
        ],
    }
    return urlencode({"payload": _slack_json(payload)})


def view_submission_body(
    *,
    user_id: str,
    user_name: str,
    view: dict[str, Any],
    values: dict[str, Any],
    view_id: str = "V0SANDBOX01",
    team_id: str = DEFAULT_TEAM_ID,
    team_domain: str = DEFAULT_TEAM_DOMAIN,
    trigger_id: str | None = None,
    api_app_id: str = DEFAULT_APP_ID,
    token: str = SANDBOX_VERIFICATION_TOKEN,
) -> str:
    """A modal submission: ``view`` is what the bot opened (callback_id, blocks,
    private_metadata…); ``values`` is ``state.values`` ({block_id: {action_id: {...}}})."""
    submitted = {
        "id": view_id,
        "team_id": team_id,
        "type": view.get("type", "modal"),
        "blocks": view.get("blocks", []),
        "private_metadata": view.get("private_metadata", ""),
        "callback_id": view.get("callback_id", ""),
        "state": {"values": values},
        "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
        "title": view.get("title"),
        "close": view.get("close"),
        "submit": view.get("submit"),
        "clear_on_close": False,
        "notify_on_close": False,
        "root_view_id": view_id,
        "previous_view_id": None,
        "app_id": api_app_id,
        "external_id": view.get("external_id", ""),
        "app_installed_team_id": team_id,
        "bot_id": "B0BOT",
    }
    payload: dict[str, Any] = {
        "type": "view_submission",
        "team": {"id": team_id, "domain": team_domain},
        "user": _user(user_id, user_name, team_id),
        "api_app_id": api_app_id,
        "token": token,
        "trigger_id": trigger_id or new_trigger_id(),
        "view": submitted,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return urlencode({"payload": _slack_json(payload)})


def event_callback_body(
    event: dict[str, Any],
    team_id: str = DEFAULT_TEAM_ID,
    api_app_id: str = DEFAULT_APP_ID,
    event_id: str | None = None,
    *,
    event_time: int | None = None,
    token: str = SANDBOX_VERIFICATION_TOKEN,
) -> str:
    """An Events API ``event_callback`` JSON body; sign it with
    ``sign(secret, body, content_type=JSON_CONTENT_TYPE)``."""
    payload: dict[str, Any] = {
        "token": token,
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{secrets.token_hex(5).upper()}",
        "event_time": int(time.time()) if event_time is None else event_time,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": "U0BOT",
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }
    return _slack_json(payload)


def url_verification_body(challenge: str, token: str = SANDBOX_VERIFICATION_TOKEN) -> str:
    """The Events API handshake body."""
    return _slack_json({"token": token, "challenge": challenge, "type": "url_verification"})
