"""The sandbox SNS signer signs like AWS: proven on AWS's own signed samples and on its output."""

from __future__ import annotations

import base64
import copy
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sandbox.sns_signer import (
    CERT_FILENAME,
    SnsSigner,
    cloudwatch_alarm_message,
    cloudwatch_alarm_subject,
)

DATA = Path(__file__).resolve().parents[1] / "data"
AWS_SNS = DATA / "aws-sns"
SIGNED_SAMPLES = sorted(
    [*AWS_SNS.glob("sns-*.json"), *(DATA / "cloudwatch").glob("*sns-http-body*.json")]
)


# An independent statement of the rule (tests/data/SOURCES.md), not the module's own code.
def canonical(message: dict[str, Any]) -> bytes:
    if message["Type"] == "Notification":
        keys = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        keys = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{k}\n{message[k]}\n" for k in keys if k in message).encode()


def verify(message: dict[str, Any], cert_pem: bytes) -> bool:
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}[message["SignatureVersion"]]
    try:
        key.verify(
            base64.b64decode(message["Signature"]),
            canonical(message),
            padding.PKCS1v15(),
            algorithm,
        )
    except InvalidSignature:
        return False
    return True


def cert_for(message: dict[str, Any]) -> bytes:
    name = str(message["SigningCertURL"]).rsplit("/", 1)[-1]
    return (AWS_SNS / name).read_bytes()


def tampered(message: dict[str, Any]) -> dict[str, Any]:
    copy_ = copy.deepcopy(message)
    copy_["Message"] = copy_["Message"] + " "
    return copy_


# --- the rule, on real AWS deliveries -------------------------------------------------------


def test_samples_are_there() -> None:
    assert len(SIGNED_SAMPLES) >= 8


@pytest.mark.parametrize("path", SIGNED_SAMPLES, ids=lambda p: p.name)
def test_canonical_rule_verifies_every_aws_sample(path: Path) -> None:
    message = json.loads(path.read_text())
    assert verify(message, cert_for(message))
    assert not verify(tampered(message), cert_for(message))


def test_subject_is_signed_when_present() -> None:
    message = json.loads((AWS_SNS / "sns-notification-aws-sdk-java-message.json").read_text())
    changed = dict(message, Subject="another subject")
    assert not verify(changed, cert_for(message))


# --- the signer ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> SnsSigner:
    return SnsSigner(tmp_path_factory.mktemp("certs"), region="us-east-1")


TOPIC = "arn:aws:sns:us-east-1:123456789012:dhanam-alarms"


def test_certificate_is_written_and_named_by_the_url(signer: SnsSigner) -> None:
    assert signer.cert_path.name == CERT_FILENAME
    assert CERT_FILENAME == "SimpleNotificationService-5a4db0c5a4db0c5a4db0c5a4db0c5a4d.pem"
    assert signer.signing_cert_url == (
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-5a4db0c5a4db0c5a4db0c5a4db0c5a4d.pem"
    )
    cert = x509.load_pem_x509_certificate(signer.cert_path.read_bytes())
    cn = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
    assert cn == "sns.amazonaws.com"
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.key_size == 2048
    assert cert.not_valid_before_utc < datetime.now(UTC) < cert.not_valid_after_utc


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("subject", [None, "ALARM: x"])
def test_notification_verifies(signer: SnsSigner, version: str, subject: str | None) -> None:
    body = signer.notification(TOPIC, '{"a": 1}', subject, signature_version=version)
    assert body["SignatureVersion"] == version
    assert ("Subject" in body) is (subject is not None)
    assert verify(body, signer.cert_path.read_bytes())
    assert not verify(tampered(body), signer.cert_path.read_bytes())
    other = dict(body, TopicArn="arn:aws:sns:us-east-1:123456789012:other")
    assert not verify(other, signer.cert_path.read_bytes())


def test_a_sha1_signature_does_not_pass_as_sha256(signer: SnsSigner) -> None:
    body = signer.notification(TOPIC, "hello")
    assert not verify(dict(body, SignatureVersion="2"), signer.cert_path.read_bytes())


def test_notification_has_the_http_body_shape(signer: SnsSigner) -> None:
    body = signer.notification(TOPIC, "hello", "subj")
    reference = json.loads((AWS_SNS / "sns-notification-aws-sdk-java-message.json").read_text())
    expected = [k for k in reference if k != "MessageAttributes"]
    assert list(body) == expected
    assert re.fullmatch(r"[0-9a-f-]{36}", body["MessageId"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["Timestamp"])
    assert body["UnsubscribeURL"].startswith(
        f"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={TOPIC}:"
    )
    assert body["MessageId"] != signer.notification(TOPIC, "hello")["MessageId"]


def test_subscription_confirmation_verifies(signer: SnsSigner) -> None:
    url = "http://127.0.0.1:9/confirm?Token=abc"
    body = signer.subscription_confirmation(TOPIC, url)
    reference = json.loads((AWS_SNS / "sns-subscriptionconfirmation-pypestream.json").read_text())
    assert set(body) == set(reference)
    assert body["Type"] == "SubscriptionConfirmation"
    assert body["SubscribeURL"] == url
    assert TOPIC in body["Message"]
    assert verify(body, signer.cert_path.read_bytes())
    assert not verify(dict(body, Token="forged"), signer.cert_path.read_bytes())
    assert not verify(dict(body, SubscribeURL="https://evil"), signer.cert_path.read_bytes())
    fixed = signer.subscription_confirmation(TOPIC, url, token="t0k")
    assert fixed["Token"] == "t0k"


def test_unsubscribe_confirmation_can_be_signed(signer: SnsSigner) -> None:
    body: dict[str, Any] = {
        "Type": "UnsubscribeConfirmation",
        "MessageId": "m",
        "Token": "t",
        "TopicArn": TOPIC,
        "Message": "bye",
        "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
        "Timestamp": "2026-01-01T00:00:00.000Z",
    }
    assert verify(signer.sign(body, "2"), signer.cert_path.read_bytes())


def test_sign_rejects_unknown_types_and_versions(signer: SnsSigner) -> None:
    with pytest.raises(ValueError):
        signer.sign({"Type": "Other", "Message": "x"})
    with pytest.raises(ValueError):
        signer.notification(TOPIC, "x", signature_version="3")


def test_a_different_signer_does_not_verify(signer: SnsSigner, tmp_path: Path) -> None:
    other = SnsSigner(tmp_path)
    body = other.notification(TOPIC, "hello")
    assert verify(body, other.cert_path.read_bytes())
    assert not verify(body, signer.cert_path.read_bytes())


# --- CloudWatch alarm messages -----------------------------------------------------------------

ALARM: dict[str, Any] = {  # describe_alarms()["MetricAlarms"][0], as moto/boto3 return it
    "AlarmName": "dhanam-api-high-error-rate",
    "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:dhanam-api-high-error-rate",
    "AlarmDescription": "dhanam-api is returning 5xx errors",
    "AlarmConfigurationUpdatedTimestamp": datetime(2026, 3, 1, 12, 0, 0, 351000, tzinfo=UTC),
    "ActionsEnabled": True,
    "OKActions": [TOPIC],
    "AlarmActions": [TOPIC],
    "InsufficientDataActions": [],
    "StateValue": "ALARM",
    "StateReason": "Threshold Crossed",
    "StateUpdatedTimestamp": datetime(2026, 3, 1, 12, 5, 0, 7000, tzinfo=UTC),
    "MetricName": "HTTPCode_Target_5XX_Count",
    "Namespace": "AWS/ApplicationELB",
    "Statistic": "Sum",
    "Dimensions": [{"Name": "LoadBalancer", "Value": "app/dhanam-production-alb/0123456789abcdef"}],
    "Period": 300,
    "EvaluationPeriods": 2,
    "Threshold": 5.0,
    "ComparisonOperator": "GreaterThanThreshold",
    "TreatMissingData": "notBreaching",
    "Metrics": [],
}
REASON = (
    "Threshold Crossed: 2 out of the last 2 datapoints [12.0 (01/03/26 12:00:00), "
    "9.0 (01/03/26 11:55:00)] were greater than the threshold (5.0) "
    "(minimum 2 datapoints for OK -> ALARM transition)."
)


def decoded_real_ok_alarm() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(
        (DATA / "cloudwatch" / "cloudwatch-alarm-OK-message-decoded.json").read_text()
    )
    return result


def test_alarm_message_has_the_real_shape() -> None:
    message = json.loads(
        cloudwatch_alarm_message(ALARM, "ALARM", "OK", REASON, "us-east-1", "123456789012")
    )
    real = decoded_real_ok_alarm()
    assert list(message) == list(real)
    expected_trigger = [k for k in real["Trigger"] if k != "DatapointsToAlarm"]
    assert list(message["Trigger"]) == expected_trigger
    assert message["AlarmName"] == "dhanam-api-high-error-rate"
    assert message["AWSAccountId"] == "123456789012"
    assert message["Region"] == "US East (N. Virginia)"
    assert message["NewStateValue"] == "ALARM"
    assert message["OldStateValue"] == "OK"
    assert message["NewStateReason"] == REASON
    assert message["StateChangeTime"] == "2026-03-01T12:05:00.007+0000"
    assert message["AlarmConfigurationUpdatedTimestamp"] == "2026-03-01T12:00:00.351+0000"
    assert message["AlarmArn"] == ALARM["AlarmArn"]
    assert message["AlarmActions"] == [TOPIC]
    assert message["InsufficientDataActions"] == []
    trigger = message["Trigger"]
    assert trigger["Statistic"] == "SUM"
    assert trigger["StatisticType"] == "Statistic"
    assert trigger["Unit"] is None
    assert trigger["Dimensions"] == [
        {"value": "app/dhanam-production-alb/0123456789abcdef", "name": "LoadBalancer"}
    ]
    assert list(trigger["Dimensions"][0]) == ["value", "name"]
    assert trigger["Threshold"] == 5.0
    assert trigger["EvaluateLowSampleCountPercentile"] == ""
    assert trigger["TreatMissingData"] == "notBreaching"


def test_alarm_message_defaults_and_null_description() -> None:
    alarm = {k: v for k, v in ALARM.items() if k not in ("AlarmDescription", "TreatMissingData")}
    alarm.update(Statistic="SampleCount", DatapointsToAlarm=2, Unit="Seconds", StateValue="OK")
    now = datetime(2026, 3, 1, 13, 0, 0, 123456, tzinfo=UTC)
    message = json.loads(
        cloudwatch_alarm_message(alarm, "ALARM", "OK", "r", "us-west-2", "1", now=now)
    )
    assert message["AlarmDescription"] is None
    assert message["Region"] == "US West (Oregon)"
    assert message["StateChangeTime"] == "2026-03-01T13:00:00.123+0000"
    assert message["Trigger"]["Statistic"] == "SAMPLE_COUNT"
    assert message["Trigger"]["Unit"] == "Seconds"
    assert message["Trigger"]["DatapointsToAlarm"] == 2
    assert (
        message["Trigger"]["TreatMissingData"] == "- TreatMissingData:                    missing"
    )
    assert list(message["Trigger"]) == list(decoded_real_ok_alarm()["Trigger"])


def test_alarm_notification_is_signed_and_carries_the_message(signer: SnsSigner) -> None:
    body = signer.cloudwatch_alarm_notification(
        TOPIC,
        ALARM,
        new_state="ALARM",
        old_state="OK",
        reason=REASON,
        region="us-east-1",
        account_id="123456789012",
    )
    assert body["Subject"] == 'ALARM: "dhanam-api-high-error-rate" in US East (N. Virginia)'
    assert json.loads(body["Message"])["NewStateValue"] == "ALARM"
    assert verify(body, signer.cert_path.read_bytes())
    real = json.loads(
        (DATA / "cloudwatch" / "cloudwatch-alarm-OK-sns-http-body.DERIVED.json").read_text()
    )
    assert real["Subject"] == cloudwatch_alarm_subject(
        "api-jideola domain alarm", "OK", "us-east-1"
    )
