"""SNS signature verification against the AWS-signed samples, with their real certificates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from integrations.sns import SnsError, SnsVerifier, parse_message, string_to_sign, trusted_sns_url

DATA = Path(__file__).resolve().parents[1] / "data"
SAMPLES = sorted((DATA / "aws-sns").glob("sns-*.json")) + sorted(
    (DATA / "cloudwatch").glob("*sns-http-body*.json")
)


def raw(path: Path) -> bytes:
    return path.read_bytes()


def verifier(topics: list[str], fetched: list[str] | None = None) -> SnsVerifier:
    async def fetch(url: str) -> bytes:
        if fetched is not None:
            fetched.append(url)
        raise AssertionError("no download expected")

    return SnsVerifier(topics=topics, cert_dir=DATA / "aws-sns", fetch=fetch)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
async def test_every_sample_verifies_expired_certificates_and_all(path: Path) -> None:
    message = parse_message(raw(path))
    check = verifier([message["TopicArn"]])
    check.check_topic(message)
    await check.verify(message)
    await check.verify(message)  # the certificate is cached in memory


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
@pytest.mark.parametrize("field", ["Message", "MessageId", "Timestamp", "TopicArn"])
async def test_any_tampered_signed_field_fails(path: Path, field: str) -> None:
    message = parse_message(raw(path))
    message[field] = message[field] + "x"
    with pytest.raises(SnsError) as caught:
        await verifier([message["TopicArn"]]).verify(message)
    assert caught.value.status == 403


def test_subject_is_signed_only_when_present() -> None:
    message = parse_message(
        (DATA / "aws-sns" / "sns-notification-aws-sdk-java-message.json").read_bytes()
    )
    assert b"Subject\nthis is raw\n" in string_to_sign(message)
    message.pop("Subject")
    assert b"Subject" not in string_to_sign(message)


_PEM = "SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem"


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        (f"https://sns.us-east-1.amazonaws.com/{_PEM}", True),
        (f"https://sns.cn-north-1.amazonaws.com.cn/{_PEM}", True),
        (f"https://sns.ap-southeast-2.amazonaws.com/{_PEM}", True),
        (f"HTTPS://SNS.US-EAST-1.AMAZONAWS.COM/{_PEM}", True),  # normalised, see test_sns_certs
        ("https://sns.us-east-1.amazonaws.com/a.pem", False),  # not SimpleNotificationService-
        ("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-a.txt", False),
        ("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-sandbox.pem", False),
        (f"https://sns.us-east-1.amazonaws.com/x/{_PEM}", False),
        (f"https://sns.us-east-1.amazonaws.com/{_PEM}?x=1", False),
        (f"https://sns.us-east-1.amazonaws.com/{_PEM}?", False),
        (f"https://sns.us-east-1.amazonaws.com/{_PEM}#f", False),
        (f"https://sns.us-east-1.amazonaws.com/{_PEM}#", False),
        (f"http://sns.us-east-1.amazonaws.com/{_PEM}", False),
        (f"https://sns.amazonaws.com/{_PEM}", False),
        (f"https://sns.us-east-1.amazonaws.com.evil.io/{_PEM}", False),
        (f"https://x.sns.us-east-1.amazonaws.com/{_PEM}", False),
        (f"https://a@sns.us-east-1.amazonaws.com/{_PEM}", False),
        (f"https://a:b@sns.us-east-1.amazonaws.com/{_PEM}", False),
        (f"https://@sns.us-east-1.amazonaws.com/{_PEM}", False),
        (f"https://sns.us-east-1.amazonaws.com:444/{_PEM}", False),
        (f"https://sns.us-east-1.amazonaws.com:443/{_PEM}", False),
        (f"https://sns.us-east-1.amazonaws.com:/{_PEM}", False),
        (f"https://sns.us-east-1.amazonaws.com./{_PEM}", False),
        (f"https://sns.us-east-1.amazonaws.com/%2e/{_PEM}", False),
        (f"https://sns.us-east-1.amazonaws.com/{_PEM.replace('7ff', '7FF')}", False),
        ("not a url", False),
        ("", False),
    ],
)
def test_certificate_url_trust(url: str, ok: bool) -> None:
    assert trusted_sns_url(url, pem=True) is ok


async def test_unlisted_topic_is_refused() -> None:
    message = parse_message(
        (DATA / "aws-sns" / "sns-notification-sigv2-aws-sdk-ruby.json").read_bytes()
    )
    with pytest.raises(SnsError) as caught:
        verifier(["arn:aws:sns:us-east-1:123456789012:other"]).check_topic(message)
    assert caught.value.status == 403


@pytest.mark.parametrize(
    "raw", [b"", b"nope", b"[1]", json.dumps({"Type": "Notification"}).encode()]
)
def test_malformed_is_400(raw: bytes) -> None:
    with pytest.raises(SnsError) as caught:
        parse_message(raw)
    assert caught.value.status == 400
