"""Sign SNS HTTP deliveries the way AWS does, with a sandbox certificate, for tests and the sandbox.

The signer makes an RSA 2048 key and a self-signed certificate (CN=sns.amazonaws.com), writes the
PEM as ``SimpleNotificationService-<hex>.pem`` (``CERT_FILENAME``: the verifier accepts only
hex names, as AWS uses) into a certificate directory (point ``SNS_CERT_CACHE_DIR`` at it) and
signs messages whose ``SigningCertURL`` names that file.

The string to sign is ``Key\\nValue\\n`` for each key in order: Notification: Message, MessageId,
Subject (only when present), Timestamp, TopicArn, Type; SubscriptionConfirmation and
UnsubscribeConfirmation: Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type.
Signature: base64 of RSA PKCS#1 v1.5 over it, SHA1 for SignatureVersion 1, SHA256 for 2.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from integrations.cloudwatch_alarms import REGION_NAMES

CERT_FILENAME = "SimpleNotificationService-5a4db0c5a4db0c5a4db0c5a4db0c5a4d.pem"
NOTIFICATION_KEYS: tuple[str, ...] = (
    "Message",
    "MessageId",
    "Subject",
    "Timestamp",
    "TopicArn",
    "Type",
)
CONFIRMATION_KEYS: tuple[str, ...] = (
    "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
)  # fmt: skip
# CloudWatch's "Region" field is the region's display name: one table, the parser's.
# What CloudWatch puts in Trigger.TreatMissingData when the alarm does not set it.
DEFAULT_TREAT_MISSING_DATA = "- TreatMissingData:                    missing"


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    """The canonical string SNS signs for ``message`` (by its ``Type``)."""
    kind = message.get("Type")
    if kind == "Notification":
        keys = NOTIFICATION_KEYS
    elif kind in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        keys = CONFIRMATION_KEYS
    else:
        raise ValueError(f"unknown SNS message Type {kind!r}")
    parts = []
    for key in keys:
        if key == "Subject" and message.get(key) is None:
            continue
        parts.append(f"{key}\n{message[key]}\n")
    return "".join(parts).encode("utf-8")


def hash_for(signature_version: str) -> hashes.HashAlgorithm:
    if signature_version == "1":
        return hashes.SHA1()  # noqa: S303 - SNS SignatureVersion 1 is SHA1 by definition
    if signature_version == "2":
        return hashes.SHA256()
    raise ValueError(f"unknown SNS SignatureVersion {signature_version!r}")


def sns_timestamp(when: datetime) -> str:
    """``2023-02-18T16:43:21.290Z``: UTC, milliseconds, Z."""
    when = when.astimezone(UTC)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}Z"


def cloudwatch_timestamp(when: datetime | str) -> str:
    """``2023-02-18T16:41:38.351+0000``, the form CloudWatch uses inside alarm messages."""
    if isinstance(when, str):
        when = datetime.fromisoformat(when.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}+0000"


def _region_of(arn: str, default: str) -> str:
    parts = arn.split(":")
    return parts[3] if len(parts) > 5 and parts[3] else default


class SnsSigner:
    """Signs SNS messages with a fresh sandbox key; its certificate is written to ``cert_dir``."""

    def __init__(
        self,
        cert_dir: Path,
        region: str = "us-east-1",
        *,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.region = region
        self._now = now or (lambda: datetime.now(UTC))
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        issued = datetime.now(UTC) - timedelta(days=1)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(issued)
            .not_valid_after(issued + timedelta(days=3650))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName("sns.amazonaws.com")]), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        cert_dir.mkdir(parents=True, exist_ok=True)
        self.cert_path = cert_dir / CERT_FILENAME
        self.cert_path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))

    @property
    def signing_cert_url(self) -> str:
        return f"https://sns.{self.region}.amazonaws.com/{CERT_FILENAME}"

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def sign(self, message: dict[str, Any], signature_version: str = "1") -> dict[str, Any]:
        """Fill SignatureVersion, SigningCertURL and Signature in ``message`` (and return it)."""
        raw = self._key.sign(
            string_to_sign(message), padding.PKCS1v15(), hash_for(signature_version)
        )
        message["SignatureVersion"] = signature_version
        message["Signature"] = base64.b64encode(raw).decode("ascii")
        message["SigningCertURL"] = self.signing_cert_url
        return message

    def notification(
        self,
        topic_arn: str,
        message: str,
        subject: str | None = None,
        *,
        signature_version: str = "1",
    ) -> dict[str, Any]:
        """A signed Notification, shaped like the JSON body SNS POSTs to an HTTP endpoint."""
        body: dict[str, Any] = {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": topic_arn,
        }
        if subject is not None:
            body["Subject"] = subject
        body["Message"] = message
        body["Timestamp"] = sns_timestamp(self._now())
        self.sign(body, signature_version)
        region = _region_of(topic_arn, self.region)
        body["UnsubscribeURL"] = (
            f"https://sns.{region}.amazonaws.com/?Action=Unsubscribe"
            f"&SubscriptionArn={topic_arn}:{uuid.uuid4()}"
        )
        return body

    def subscription_confirmation(
        self,
        topic_arn: str,
        subscribe_url: str,
        *,
        token: str | None = None,
        signature_version: str = "1",
    ) -> dict[str, Any]:
        """A signed SubscriptionConfirmation body (``token`` defaults to a random one)."""
        body: dict[str, Any] = {
            "Type": "SubscriptionConfirmation",
            "MessageId": str(uuid.uuid4()),
            "Token": token or secrets.token_hex(64),
            "TopicArn": topic_arn,
            "Message": (
                f"You have chosen to subscribe to the topic {topic_arn}.\n"
                "To confirm the subscription, visit the SubscribeURL included in this message."
            ),
            "SubscribeURL": subscribe_url,
            "Timestamp": sns_timestamp(self._now()),
        }
        return self.sign(body, signature_version)

    def cloudwatch_alarm_notification(
        self,
        topic_arn: str,
        alarm: Mapping[str, Any],
        *,
        new_state: str,
        old_state: str,
        reason: str,
        region: str,
        account_id: str,
    ) -> dict[str, Any]:
        """The signed notification CloudWatch sends through SNS when ``alarm`` changes state."""
        body = cloudwatch_alarm_message(
            alarm, new_state, old_state, reason, region, account_id, now=self._now()
        )
        return self.notification(
            topic_arn, body, cloudwatch_alarm_subject(alarm["AlarmName"], new_state, region)
        )


def cloudwatch_alarm_subject(alarm_name: str, new_state: str, region: str) -> str:
    """``ALARM: "name" in US East (N. Virginia)``, the Subject CloudWatch gives its messages."""
    return f'{new_state}: "{alarm_name}" in {REGION_NAMES.get(region, region)}'


def _dimensions(dimensions: Any) -> list[dict[str, Any]]:
    return [{"value": d["Value"], "name": d["Name"]} for d in dimensions or []]


def _trigger(alarm: Mapping[str, Any]) -> dict[str, Any]:
    trigger: dict[str, Any] = {}
    if alarm.get("MetricName"):
        trigger["MetricName"] = alarm["MetricName"]
        trigger["Namespace"] = alarm.get("Namespace")
        if alarm.get("ExtendedStatistic"):
            trigger["StatisticType"] = "ExtendedStatistic"
            trigger["ExtendedStatistic"] = alarm["ExtendedStatistic"]
        else:
            trigger["StatisticType"] = "Statistic"
            # SampleCount -> SAMPLE_COUNT, Average -> AVERAGE
            statistic = str(alarm.get("Statistic", ""))
            trigger["Statistic"] = "".join(
                f"_{c}" if c.isupper() and i else c for i, c in enumerate(statistic)
            ).upper()
        trigger["Unit"] = alarm.get("Unit")
        trigger["Dimensions"] = _dimensions(alarm.get("Dimensions"))
    trigger["Period"] = alarm.get("Period")
    trigger["EvaluationPeriods"] = alarm.get("EvaluationPeriods")
    if alarm.get("DatapointsToAlarm") is not None:
        trigger["DatapointsToAlarm"] = alarm["DatapointsToAlarm"]
    trigger["ComparisonOperator"] = alarm.get("ComparisonOperator")
    trigger["Threshold"] = float(alarm.get("Threshold", 0.0))
    trigger["TreatMissingData"] = alarm.get("TreatMissingData") or DEFAULT_TREAT_MISSING_DATA
    trigger["EvaluateLowSampleCountPercentile"] = alarm.get("EvaluateLowSampleCountPercentile", "")
    if not alarm.get("MetricName"):
        trigger["Metrics"] = [_metric_query(q) for q in alarm.get("Metrics") or []]
    return trigger


def _metric_query(query: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in query.items() if k != "MetricStat"}
    if "MetricStat" in query:
        stat = dict(query["MetricStat"])
        metric = dict(stat["Metric"])
        metric["Dimensions"] = _dimensions(metric.get("Dimensions"))
        stat["Metric"] = metric
        out["MetricStat"] = stat
    return out


def cloudwatch_alarm_message(  # noqa: PLR0917 - the agreed signature
    alarm: Mapping[str, Any],
    new_state: str,
    old_state: str,
    reason: str,
    region: str,
    account_id: str,
    *,
    now: datetime | None = None,
) -> str:
    """The JSON ``Message`` CloudWatch publishes for a metric alarm's state change.

    ``alarm`` is one ``MetricAlarms`` entry of describe_alarms. StateChangeTime is the alarm's
    StateUpdatedTimestamp when it already shows ``new_state``, else ``now``.
    """
    if alarm.get("StateValue") == new_state and alarm.get("StateUpdatedTimestamp"):
        changed = cloudwatch_timestamp(alarm["StateUpdatedTimestamp"])
    else:
        changed = cloudwatch_timestamp(now or datetime.now(UTC))
    name = alarm["AlarmName"]
    body: dict[str, Any] = {
        "AlarmName": name,
        "AlarmDescription": alarm.get("AlarmDescription"),
        "AWSAccountId": account_id,
    }
    if alarm.get("AlarmConfigurationUpdatedTimestamp"):
        updated = alarm["AlarmConfigurationUpdatedTimestamp"]
        body["AlarmConfigurationUpdatedTimestamp"] = cloudwatch_timestamp(updated)
    body.update(
        {
            "NewStateValue": new_state,
            "NewStateReason": reason,
            "StateChangeTime": changed,
            "Region": REGION_NAMES.get(region, region),
            "AlarmArn": alarm.get("AlarmArn")
            or f"arn:aws:cloudwatch:{region}:{account_id}:alarm:{name}",
            "OldStateValue": old_state,
            "OKActions": list(alarm.get("OKActions") or []),
            "AlarmActions": list(alarm.get("AlarmActions") or []),
            "InsufficientDataActions": list(alarm.get("InsufficientDataActions") or []),
            "Trigger": _trigger(alarm),
        }
    )
    return json.dumps(body, separators=(",", ":"))
