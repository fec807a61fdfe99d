"""Secrets never reach a log line: the real logging set-up (bot.logs.configure_logging) writing
to the process's stderr, fault paths that log exceptions carrying secrets, both formats.

Not structlog's capture_logs (it bypasses the processors): what is scanned is what a log
shipper would read."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
import redis.exceptions
import structlog
from slack_sdk.errors import SlackApiError

from bot.logs import configure_logging, forget_secrets, redact_text
from bot.wiring import Overrides
from core.settings import Settings
from sandbox.aws_world import DhanamWorld
from sandbox.redis_server import RedisServer
from tests.fixtures.bot import FAST_ROLLOUTS, aws_sandbox

BOT_TOKEN = "xoxb-2222222222-3333333333333-AbCdEfGhIjKlMnOpQrStUvWx"
USER_TOKEN = "xoxp-1111-2222-3333-0123456789abcdef0123456789abcdef"
APP_TOKEN = "xapp-1-A0000000-1234567890-abcdef0123456789"
REFRESH_TOKEN = "xoxe.xoxp-1-Mi0yLTEyMzQ1Njc4OTAtMTIzNDU2Nzg5MA"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
ROUTING_KEY = "R0UT1NGKEY0123456789abcdefabcdef"
PD_API_TOKEN = "u+PdTokenValue_9876543210"
WEBHOOK_SECRETS = ("whsecOld0123456789", "whsecNew9876543210")
REDIS_PASSWORD = "hunter2-redis-pw!"
REDIS_URL = "redis://:hunter2-redis-pw%21@cache.internal:6379/0"
AWS_ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
AWS_TEMP_KEY = "ASIAY34FZKBOKMUTVV7A"
AWS_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SECRETS = (
    BOT_TOKEN,
    USER_TOKEN,
    APP_TOKEN,
    REFRESH_TOKEN,
    SIGNING_SECRET,
    ROUTING_KEY,
    PD_API_TOKEN,
    *WEBHOOK_SECRETS,
    REDIS_PASSWORD,
    "hunter2-redis-pw%21",
    AWS_ACCESS_KEY,
    AWS_TEMP_KEY,
    AWS_SECRET_KEY,
)


def settings() -> Settings:
    """The process's settings with every secret set: constructing them registers the values."""
    return Settings(
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_app_token=APP_TOKEN,
        redis_url=REDIS_URL,
        pagerduty_routing_key=ROUTING_KEY,
        pagerduty_api_token=PD_API_TOKEN,
        pagerduty_webhook_secret=",".join(WEBHOOK_SECRETS),
    )


@pytest.fixture
def real_logging() -> Iterator[None]:
    """Restore the root logger and structlog after a test reconfigures them."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = structlog.get_config()
    forget_secrets()
    yield
    forget_secrets()
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**config)


def assert_clean(output: str) -> None:
    assert output.strip(), "nothing was logged: the check would prove nothing"
    for line in output.splitlines():
        for secret in SECRETS:
            assert secret not in line, f"{secret!r} leaked in: {line}"
    assert "[redacted]" in output


def _verify(signature: str) -> None:
    signing_secret = SIGNING_SECRET  # a frame local holding the secret
    raise ValueError(f"signature {signature} does not match HMAC with {signing_secret}")


async def fault_paths() -> None:
    """Exceptions carrying secrets, logged the ways the bot and its libraries log them."""
    log = structlog.get_logger("dhanam.test")
    # A Redis URL with a password in a ConnectionError message (and a real failed connect).
    client = aioredis.Redis.from_url(
        "redis://:hunter2-redis-pw%21@127.0.0.1:1/0", socket_connect_timeout=0.5
    )
    try:
        await client.ping()
    except redis.exceptions.ConnectionError:
        log.exception("redis.unavailable", url=REDIS_URL)
    finally:
        await client.aclose()
    try:
        raise redis.exceptions.ConnectionError(f"Error connecting to {REDIS_URL}: refused")
    except redis.exceptions.ConnectionError:
        log.exception("approval.store_unavailable")
        logging.getLogger("redis.asyncio.connection").exception("connection lost")
    # An xoxb token in a SlackApiError (message and response).
    try:
        raise SlackApiError(  # type: ignore[no-untyped-call]
            f"The request to the Slack API failed. token={BOT_TOKEN} (url: https://slack.com/api/)",
            {"ok": False, "error": "invalid_auth", "token": BOT_TOKEN, "user": USER_TOKEN},
        )
    except SlackApiError as exc:
        log.exception("slack.write_failed", error=exc)
        logging.getLogger("slack_bolt.App").exception("Failed to run listener")
    # A traceback whose frame locals and message hold the signing secret.
    try:
        _verify("v0=abc")
    except ValueError:
        log.exception("slack.signature_check_failed")
        log.exception("unhandled", stack_info=True)
    # PagerDuty and AWS keys in messages and event values.
    log.warning(
        "pagerduty.failed",
        detail=f"POST /v2/enqueue routing_key={ROUTING_KEY} refused",
        header=f"Authorization: Token token={PD_API_TOKEN}",
        secrets=list(WEBHOOK_SECRETS),
        note=f"rotated {WEBHOOK_SECRETS[0]} to {WEBHOOK_SECRETS[1]}",
    )
    logging.getLogger("botocore.credentials").error(
        "bad credentials aws_access_key_id=%s aws_secret_access_key=%s session=%s",
        AWS_ACCESS_KEY,
        AWS_SECRET_KEY,
        AWS_TEMP_KEY,
    )
    log.error("sts", response={"Credentials": {"SecretAccessKey": AWS_SECRET_KEY}})
    log.info("tokens", seen=[APP_TOKEN, REFRESH_TOKEN], obj=ValueError(USER_TOKEN))
    # asyncio's own report of a task exception nobody retrieved.
    loop = asyncio.get_running_loop()
    loop.call_exception_handler(
        {"message": "Task exception was never retrieved", "exception": ValueError(BOT_TOKEN)}
    )


@pytest.mark.parametrize("fmt", ["json", "console"])
async def test_fault_paths_log_no_secret(
    fmt: str, real_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(fmt, "debug")  # the real set-up, writing to sys.stderr
    settings()
    await fault_paths()
    out, err = capsys.readouterr()
    assert_clean(out + err)
    assert "slack.signature_check_failed" in err
    assert "Traceback (most recent call last)" in err
    assert "cache.internal:6379" in err  # the host stays, the password goes
    if fmt == "json":
        for line in err.splitlines():
            json.loads(line)  # redacting the rendered line keeps it JSON


def test_secrets_from_the_environment_are_redacted(
    real_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET_KEY)
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    structlog.get_logger("t").info("x", a=SIGNING_SECRET, b=f"k {ROUTING_KEY}", c=AWS_SECRET_KEY)
    logging.getLogger("lib").warning("password is %s", REDIS_PASSWORD)
    assert_clean(stream.getvalue())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("redis://:pw123@host:6379/0", "redis://:[redacted]@host:6379/0"),
        ("rediss://user:pw123@host", "rediss://user:[redacted]@host"),
        ("https://slack.com/api/chat.postMessage", "https://slack.com/api/chat.postMessage"),
        ("token xoxb-1-2-abc and xoxe-1-zz", "token [redacted] and [redacted]"),
        ("key AKIAIOSFODNN7EXAMPLE", "key [redacted]"),
        ('{"SecretAccessKey": "abc/def+ghi"}', '{"SecretAccessKey": "[redacted]"}'),
        ("aws_secret_access_key = abc/def", "aws_secret_access_key = [redacted]"),
        ("Authorization: Bearer abcdefgh12345", "Authorization: Bearer [redacted]"),
        ("dedup_key=inc-42 request=r-1", "dedup_key=inc-42 request=r-1"),
    ],
)
def test_shapes(text: str, expected: str) -> None:
    assert redact_text(text) == expected


async def test_redis_down_scenarios_log_no_secret(
    real_logging: None,
    redis_url: str,
    aws_world: DhanamWorld,
    redis_server: RedisServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Session-level: the suite's Redis-down deploy scenario, logging at debug with known secrets
    (the world's signing secret and token, plus every secret of settings())."""
    configure_logging("json", "debug")
    settings()
    overrides = Overrides(sweeper=False, rollouts=FAST_ROLLOUTS)
    options: dict[str, Any] = {"signing_secret": SIGNING_SECRET}
    async with aws_sandbox(redis_url, aws_world, overrides, **options) as bot:
        await asyncio.to_thread(redis_server.shutdown)
        try:
            reply = await bot.slash("deploy api production v1.3.0", user="alice")
            assert reply.status == 200
            await bot.settle()
            assert bot.slack.ephemerals("U0ALICE")[-1].text == (
                "approval store unavailable. Nothing was changed."
            )
        finally:
            await asyncio.to_thread(redis_server.restart)
    out, err = capsys.readouterr()
    output = out + err
    assert '"event": "http.request"' in output, output[-2000:]  # the bot's lines were scanned
    for line in output.splitlines():
        for secret in (*SECRETS, "xoxb-sandbox"):
            assert secret not in line, f"{secret!r} leaked in: {line}"
