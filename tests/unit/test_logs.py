from __future__ import annotations

import io
import json
import logging

import structlog

from bot.logs import bind_request, clear_request, configure_logging
from core.settings import Settings


def _capture() -> io.StringIO:
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    return stream


def test_json_lines_carry_request_context() -> None:
    stream = _capture()
    bind_request(request_id="r-1", user_id="U0ALICE", command="/dhanam")
    structlog.get_logger("t").info("approval.granted", request="abc")
    clear_request()
    record = json.loads(stream.getvalue().splitlines()[-1])
    assert record["event"] == "approval.granted"
    assert record["request_id"] == "r-1"
    assert record["user_id"] == "U0ALICE"
    assert record["level"] == "info"
    assert "timestamp" in record


def test_secrets_are_redacted_by_key_and_by_shape() -> None:
    stream = _capture()
    log = structlog.get_logger("t")
    log.info(
        "x", token="xoxb-123-abc", signing_secret="s3cret", note="sent with xoxb-999-zzz today"
    )
    log.info("y", url="redis://user:hunter2@cache:6379/0")
    logging.getLogger("aiohttp.client").warning("header Authorization: Bearer xoxb-777-aaa")
    out = stream.getvalue()
    for secret in ("xoxb-123-abc", "s3cret", "xoxb-999-zzz", "hunter2", "xoxb-777-aaa"):
        assert secret not in out
    assert "[redacted]" in out


def test_settings_repr_masks_secrets() -> None:
    settings = Settings(slack_bot_token="xoxb-should-not-show", slack_signing_secret="sign-me")
    assert "xoxb-should-not-show" not in repr(settings)
    assert "sign-me" not in str(settings.model_dump())


def test_webhook_secrets_split_for_rotation() -> None:
    settings = Settings(pagerduty_webhook_secret=" old , new ,")
    assert settings.webhook_secrets() == ["old", "new"]
    assert Settings().webhook_secrets() == []
