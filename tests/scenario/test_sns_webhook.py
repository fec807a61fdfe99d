"""Scenario: the real AWS-signed SNS samples POSTed to /webhooks/sns of the running bot."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from integrations.sns import FetchError
from sandbox.world import SandboxWorld
from tests.scenario.alarm_support import TOPIC, alarm_world, deliver, fire, top_level

DATA = Path(__file__).resolve().parents[1] / "data"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dhanam.example.toml"
SAMPLES = sorted((DATA / "aws-sns").glob("sns-*.json")) + sorted(
    (DATA / "cloudwatch").glob("*sns-http-body*.json")
)


def raw_text(path: Path) -> str:
    return path.read_text()


def sample(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(raw_text(path))
    return data


class Fetcher:
    def __init__(self) -> None:
        self.urls: list[str] = []
        self.fail = False

    async def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        if self.fail:
            raise FetchError("connection refused")
        return b"<ConfirmSubscriptionResponse/>"


@pytest.fixture
def fetcher() -> Fetcher:
    return Fetcher()


@pytest.fixture
async def bot(redis_url: str, tmp_path: Path, fetcher: Fetcher) -> AsyncIterator[SandboxWorld]:
    """Topics: the samples' and the sandbox's; certificates: the samples' (copied next to the
    sandbox signer's, which is the SNS_CERT_CACHE_DIR the bot was given)."""
    topics = sorted({sample(p)["TopicArn"] for p in SAMPLES} | {TOPIC})
    text = re.sub(r"(?m)^topics = .*$", f"topics = {json.dumps(topics)}", EXAMPLE.read_text())
    config = tmp_path / "dhanam.toml"
    config.write_text(text)
    async with alarm_world(redis_url, config_path=config, sns_fetch=fetcher) as world:
        for pem in (DATA / "aws-sns").glob("*.pem"):
            shutil.copy(pem, world.sns.cert_path.parent / pem.name)
        yield world


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
async def test_every_aws_signed_sample_is_accepted(bot: SandboxWorld, path: Path) -> None:
    reply = await deliver(bot, raw_text(path))
    assert reply.status == 200, reply.body
    assert reply.body["status"] in ("accepted", "confirmed")


async def test_subscription_confirmation_visits_the_subscribe_url(
    bot: SandboxWorld, fetcher: Fetcher
) -> None:
    body = sample(DATA / "aws-sns" / "sns-subscriptionconfirmation-pypestream.json")
    reply = await deliver(bot, body)
    assert reply.body == {"status": "confirmed"}
    assert fetcher.urls == [body["SubscribeURL"]]


async def test_a_failed_confirmation_is_502_and_can_be_retried(
    bot: SandboxWorld, fetcher: Fetcher
) -> None:
    body = sample(DATA / "aws-sns" / "sns-subscriptionconfirmation-pypestream.json")
    fetcher.fail = True
    assert (await deliver(bot, body)).status == 502
    fetcher.fail = False
    assert (await deliver(bot, body)).body == {"status": "confirmed"}


async def test_unsubscribe_confirmation_is_logged(bot: SandboxWorld) -> None:
    body = bot.sns.subscription_confirmation(TOPIC, "https://sns.us-east-1.amazonaws.com/?x=1")
    body["Type"] = "UnsubscribeConfirmation"
    bot.sns.sign(body)
    reply = await deliver(bot, body)
    assert reply.body == {"status": "logged"}


async def test_cloudwatch_samples_post_alarms_in_the_alerts_channel(bot: SandboxWorld) -> None:
    for name in ("cloudwatch-metric-alarm-ALARM", "cloudwatch-composite-alarm-ALARM"):
        path = next((DATA / "cloudwatch").glob(f"{name}-sns-http-body*.json"))
        assert (await deliver(bot, raw_text(path))).body["status"] == "accepted"
    await bot.settle_alarms()
    roots = top_level(bot, "C0ALERTS")
    assert len(roots) == 2
    assert "IExecutionFailureHook Sum >= 1 for 1 × 5 min" in str(roots[0].blocks)  # noqa: RUF001
    assert "ALARM(arn:aws:cloudwatch" in str(roots[1].blocks)  # composite: its rule


def _tampered(body: dict[str, Any]) -> dict[str, Any]:
    copy = dict(body)
    copy["Message"] = copy["Message"] + " "
    return copy


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
async def test_a_tampered_copy_is_403(bot: SandboxWorld, path: Path) -> None:
    reply = await deliver(bot, _tampered(sample(path)))
    assert reply.status == 403
    assert reply.body["error"] == "forbidden"


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-east-1.evil.com/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem",
        "https://evil.com/sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
        "https://sns.us-east-1.amazonaws.com.evil.com/SimpleNotificationService-x.pem",
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.txt",
        "https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
        "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-x.pem",
    ],
)
async def test_a_foreign_certificate_url_is_403(bot: SandboxWorld, url: str) -> None:
    body = sample(DATA / "aws-sns" / "sns-notification-sigv1-aws-sdk-ruby.json")
    body["SigningCertURL"] = url
    reply = await deliver(bot, body)
    assert reply.status == 403


async def test_an_unlisted_topic_is_403_even_when_signed(bot: SandboxWorld) -> None:
    body = bot.sns.notification("arn:aws:sns:us-east-1:123456789012:someone-else", "hi")
    reply = await deliver(bot, body)
    assert reply.status == 403
    assert "topic" in reply.body["message"]


async def test_the_sandbox_signer_sigv2_is_accepted(bot: SandboxWorld) -> None:
    body = bot.sns.notification(TOPIC, "hello", signature_version="2")
    reply = await deliver(bot, body)  # signed, not an alarm: a plain notice
    assert reply.body == {"status": "accepted", "posted_as": "notice"}


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[]",
        "{}",
        '{"Type": "Notification"}',
        '{"Type": "Bogus", "MessageId": "1"}',
        "\xff",
    ],
)
async def test_bad_json_or_missing_fields_is_400(bot: SandboxWorld, raw: str) -> None:
    reply = await deliver(bot, raw)
    assert reply.status == 400
    assert reply.body["error"] == "bad_request"


async def test_missing_signature_is_400(bot: SandboxWorld) -> None:
    body = sample(DATA / "aws-sns" / "sns-notification-sigv1-aws-sdk-ruby.json")
    del body["Signature"]
    assert (await deliver(bot, body)).status == 400


async def test_unknown_signature_version_and_bad_base64_are_403(bot: SandboxWorld) -> None:
    body = sample(DATA / "aws-sns" / "sns-notification-sigv1-aws-sdk-ruby.json")
    assert (await deliver(bot, {**body, "SignatureVersion": "3"})).status == 403
    assert (await deliver(bot, {**body, "Signature": "!!notbase64"})).status == 403


async def test_a_duplicate_delivery_is_processed_once(bot: SandboxWorld) -> None:
    path = next((DATA / "cloudwatch").glob("cloudwatch-metric-alarm-ALARM-sns-http-body*.json"))
    first = await deliver(bot, raw_text(path))
    second = await deliver(bot, raw_text(path))
    assert first.body["status"] == "accepted"
    assert second.body == {"status": "duplicate"}
    await bot.settle_alarms()
    assert len(top_level(bot, "C0ALERTS")) == 1


async def test_redis_down_is_503_not_500(bot: SandboxWorld, redis_server: Any) -> None:
    redis_server.stop()
    reply = await fire(bot, "dhanam-api-high-error-rate", "ALARM")
    assert reply.status == 503
    assert reply.body["error"] == "unavailable"


async def test_the_real_ok_sample_of_an_alarm_never_seen_firing_is_posted_once_as_recovered(
    bot: SandboxWorld,
) -> None:
    """ALARM → OK for an alarm the bot has no record of (it was down, or the subscription is
    new): one "recovered" message in the alarm's channel, even when SNS delivers it twice."""
    path = DATA / "cloudwatch" / "cloudwatch-alarm-OK-sns-http-body.DERIVED.json"
    assert (await deliver(bot, raw_text(path))).body["status"] == "accepted"
    assert (await deliver(bot, raw_text(path))).body == {"status": "duplicate"}
    await bot.settle_alarms()
    roots = top_level(bot, "C0ALERTS")
    assert len(roots) == 1, [r.text for r in roots]
    assert roots[0].text == "Recovered: api-jideola domain alarm"
    assert "recovered" in str(roots[0].blocks)
    assert "ALARM → OK at <!date^1676738601^" in str(roots[0].blocks)
    assert "|16:43 UTC 18 Feb>" in str(roots[0].blocks)
