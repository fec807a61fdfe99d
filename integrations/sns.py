"""SNS HTTP(S) deliveries: parse, check the topic, verify the AWS signature, confirm subscriptions.

Fail closed: anything that cannot be verified is refused (SnsError 403); anything malformed is
SnsError 400. The signature is RSA PKCS#1 v1.5 over the canonical string (SHA1 for
SignatureVersion 1, SHA256 for 2) with the certificate named by SigningCertURL, which is trusted
only when it is exactly `https://sns.<region>.amazonaws.com/SimpleNotificationService-<hex>.pem`
(or the `.amazonaws.com.cn` partition): no query, fragment, userinfo or port. Certificate expiry
is not checked: AWS's own SDK verifiers do not, and the samples AWS signed years ago must keep
verifying.

Certificates (`CertificateCache`): read from SNS_CERT_CACHE_DIR first (file named as the URL's
last path segment), else downloaded. Anyone who knows a topic ARN can post signed-looking bodies,
so what a body can make the bot do is bounded: the cache key is the normalised URL (a query
string cannot make a new entry, it is refused), at most `CERT_CACHE_SIZE` certificates are kept
(least recently used goes first), a failed fetch is remembered for `FAILURE_TTL` seconds (a
repeat fails at once, without fetching; at most `FAILURE_CACHE_SIZE` remembered),
concurrent verifications of one URL share one fetch, and downloads of all URLs together are
limited to `DOWNLOADS_PER_MINUTE` (a token bucket): a body naming a new made-up certificate each
time cannot make the bot download without limit. Over the budget the answer is 503 (SNS
retries; a real certificate is downloaded once and then cached), and nothing is remembered
against the URL.

Long: parsing, the certificate URL rule, the bounded certificate cache and the signature check
are one fail-closed verification of a delivery, audited top to bottom in one file.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import json
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

log = structlog.get_logger(__name__)

NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"

_NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_KEYS = (
    "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
)  # fmt: skip
_COMMON_REQUIRED = (
    "Type", "MessageId", "TopicArn", "Message", "Timestamp",
    "SignatureVersion", "Signature", "SigningCertURL",
)  # fmt: skip
_SNS_HOST = re.compile(r"^sns\.[a-z]{2}(-[a-z]+)+-\d\.amazonaws\.com(\.cn)?$")
_CERT_NAME = re.compile(r"^[A-Za-z0-9._-]+\.pem$")
_CERT_PATH = re.compile(r"^/SimpleNotificationService-[0-9a-f]{8,128}\.pem$")
FETCH_TIMEOUT = 5.0
CERT_CACHE_SIZE = 32  # SNS uses one certificate per region at a time; 32 is many regions' worth
FAILURE_TTL = 60.0  # seconds a failed certificate fetch is remembered (answered 403 at once)
FAILURE_CACHE_SIZE = 256  # failures remembered at most (oldest forgotten first)
DOWNLOADS_PER_MINUTE = 10  # certificate downloads, all URLs together (burst: as many)

Fetch = Callable[[str], Awaitable[bytes]]


class SnsError(Exception):
    """A delivery the bot refuses: `status` 400 (malformed) or 403 (unverifiable/not allowed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class FetchError(Exception):
    """An HTTPS GET that did not succeed."""


async def https_get(url: str) -> bytes:
    """GET over HTTPS with a short timeout; FetchError unless the answer is 2xx."""
    timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, allow_redirects=False) as response,
        ):
            body = await response.read()
            if response.status >= 300:
                raise FetchError(f"HTTP {response.status}")
            return body
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise FetchError(f"{type(exc).__name__}: {exc}") from exc


def parse_message(raw: bytes) -> dict[str, str]:
    """The SNS JSON body (sent as text/plain); SnsError(400) when malformed or incomplete."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SnsError(400, "body is not SNS JSON") from None
    if not isinstance(data, dict):
        raise SnsError(400, "body is not a JSON object")
    kind = data.get("Type")
    required = list(_COMMON_REQUIRED)
    if kind in (SUBSCRIPTION_CONFIRMATION, UNSUBSCRIBE_CONFIRMATION):
        required += ["SubscribeURL", "Token"]
    elif kind != NOTIFICATION:
        raise SnsError(400, f"unknown SNS message Type {kind!r}")
    missing = [k for k in required if not isinstance(data.get(k), str) or not data.get(k)]
    if missing:
        raise SnsError(400, f"missing or empty SNS field(s): {', '.join(missing)}")
    subject = data.get("Subject")
    if subject is not None and not isinstance(subject, str):
        raise SnsError(400, "Subject is not a string")
    return {k: v for k, v in data.items() if isinstance(v, str)}


def string_to_sign(message: dict[str, str]) -> bytes:
    keys = _NOTIFICATION_KEYS if message["Type"] == NOTIFICATION else _CONFIRMATION_KEYS
    parts = [f"{k}\n{message[k]}\n" for k in keys if k in message]
    return "".join(parts).encode("utf-8")


def trusted_sns_url(url: str, *, pem: bool) -> bool:
    """With `pem`: a signing certificate URL (see `certificate_url`). Without: https on host
    `sns.<region>.amazonaws.com[.cn]`, no userinfo or odd port (a SubscribeURL, query and all)."""
    if pem:
        return certificate_url(url) is not None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme != "https" or "@" in parts.netloc or port not in (None, 443):
        return False
    return bool(_SNS_HOST.match(parts.hostname or ""))


def certificate_url(url: str) -> str | None:
    """The normalised form of a SigningCertURL (lower-case scheme and host), or None unless it
    is exactly `https://sns.<region>.amazonaws.com[.cn]/SimpleNotificationService-<hex>.pem`:
    no query (not even an empty `?`), no fragment, no userinfo, no port (not even :443)."""
    if "?" in url or "#" in url or "@" in url or "\\" in url or not url.isascii():
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.scheme.lower() != "https" or parts.netloc.lower() != host:
        return None  # userinfo or a port (`host:port` is not the bare hostname)
    if not _SNS_HOST.match(host) or not _CERT_PATH.match(parts.path):
        return None
    return f"https://{host}{parts.path}"


@dataclass(frozen=True)
class _Hash:
    version: str

    def algorithm(self) -> hashes.HashAlgorithm:
        if self.version == "1":
            return hashes.SHA1()  # noqa: S303 - SNS SignatureVersion 1 is SHA1 by definition
        return hashes.SHA256()


class CertificateCache:
    """Public keys of SNS signing certificates by normalised URL: a bounded LRU, failures
    remembered for `failure_ttl` seconds, one load at a time per URL. Single event loop."""

    def __init__(
        self,
        *,
        cert_dir: Path | None,
        fetch: Fetch,
        size: int = CERT_CACHE_SIZE,
        failure_ttl: float = FAILURE_TTL,
        failure_size: int = FAILURE_CACHE_SIZE,
        clock: Callable[[], float] = time.monotonic,
        downloads_per_minute: int = DOWNLOADS_PER_MINUTE,
    ) -> None:
        self._rate = downloads_per_minute / 60.0
        self._burst = float(downloads_per_minute)
        self._tokens = self._burst
        self._refilled = clock()
        self._cert_dir = cert_dir
        self._fetch = fetch
        self._size = size
        self._failure_ttl = failure_ttl
        self._failure_size = failure_size
        self._clock = clock
        self._keys: OrderedDict[str, rsa.RSAPublicKey] = OrderedDict()
        self._failures: OrderedDict[str, tuple[float, str]] = OrderedDict()  # url: (until, why)
        self._loading: dict[str, asyncio.Task[rsa.RSAPublicKey]] = {}

    def __len__(self) -> int:
        return len(self._keys)

    async def key(self, url: str) -> rsa.RSAPublicKey:
        """The certificate's RSA key for a normalised URL (see `certificate_url`); SnsError 403
        when it cannot be had now."""
        found = self._keys.get(url)
        if found is not None:
            self._keys.move_to_end(url)
            return found
        failed = self._failures.get(url)
        if failed is not None:
            if self._clock() < failed[0]:
                raise SnsError(403, failed[1])
            del self._failures[url]
        task = self._loading.get(url)
        if task is None:
            task = asyncio.create_task(self._load(url))
            task.add_done_callback(functools.partial(self._loaded, url))
            self._loading[url] = task
        # shield: a verification that is cancelled (client gone) does not cancel the load the
        # other waiters share.
        return await asyncio.shield(task)

    def _loaded(self, url: str, task: asyncio.Task[rsa.RSAPublicKey]) -> None:
        if self._loading.get(url) is task:
            del self._loading[url]
        if not task.cancelled():
            task.exception()  # retrieved here, so nobody waiting is not an "unretrieved" error

    async def _load(self, url: str) -> rsa.RSAPublicKey:
        try:
            key = await self._read(url)
        except SnsError as exc:
            if exc.status == 503:
                raise  # over the download budget: not the URL's fault
            self._failures[url] = (self._clock() + self._failure_ttl, exc.message)
            self._failures.move_to_end(url)
            while len(self._failures) > self._failure_size:
                self._failures.popitem(last=False)
            raise
        self._keys[url] = key
        self._keys.move_to_end(url)
        while len(self._keys) > self._size:
            self._keys.popitem(last=False)
        return key

    async def _read(self, url: str) -> rsa.RSAPublicKey:
        name = urlsplit(url).path.rsplit("/", 1)[-1]
        pem = self._from_dir(name)
        if pem is None:
            if not self._may_download():
                log.warning("sns.cert_download_budget_spent", url=url)
                raise SnsError(503, "too many certificate downloads just now; retry later")
            try:
                pem = await self._fetch(url)
            except FetchError as exc:
                log.warning("sns.cert_download_failed", url=url, error=str(exc))
                raise SnsError(403, "cannot fetch the signing certificate") from None
        try:
            key = x509.load_pem_x509_certificate(pem).public_key()
        except ValueError:
            raise SnsError(403, "signing certificate is not a PEM certificate") from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise SnsError(403, "signing certificate is not RSA")
        return key

    def _may_download(self) -> bool:
        """Take a token from the download bucket (refilled at the budget's rate)."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self._rate)
        self._refilled = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def _from_dir(self, name: str) -> bytes | None:
        if self._cert_dir is None or not _CERT_NAME.match(name):
            return None
        try:
            return (self._cert_dir / name).read_bytes()
        except OSError:
            return None


class SnsVerifier:
    def __init__(
        self,
        *,
        topics: list[str],
        cert_dir: Path | None,
        fetch: Fetch = https_get,
        certificates: CertificateCache | None = None,
    ) -> None:
        self._topics = frozenset(topics)
        self._fetch = fetch
        if certificates is None:  # (not `or`: an empty cache has len 0)
            certificates = CertificateCache(cert_dir=cert_dir, fetch=fetch)
        self.certificates = certificates

    def check_topic(self, message: dict[str, str]) -> None:
        if message["TopicArn"] not in self._topics:
            raise SnsError(403, "SNS topic not allowed")

    async def verify(self, message: dict[str, str]) -> None:
        """SnsError(403) unless AWS signed exactly this message."""
        version = message["SignatureVersion"]
        if version not in ("1", "2"):
            raise SnsError(403, f"unsupported SignatureVersion {version!r}")
        url = certificate_url(message["SigningCertURL"])
        if url is None:
            raise SnsError(403, "SigningCertURL is not an AWS SNS certificate URL")
        try:
            signature = base64.b64decode(message["Signature"], validate=True)
        except (binascii.Error, ValueError):
            raise SnsError(403, "signature is not base64") from None
        key = await self.certificates.key(url)
        try:
            key.verify(
                signature, string_to_sign(message), padding.PKCS1v15(), _Hash(version).algorithm()
            )
        except InvalidSignature:
            raise SnsError(403, "SNS signature does not verify") from None

    async def confirm(self, message: dict[str, str]) -> None:
        """Visit the SubscribeURL of a verified SubscriptionConfirmation (host checked too)."""
        url = message["SubscribeURL"]
        if not trusted_sns_url(url, pem=False):
            raise SnsError(403, "SubscribeURL is not an AWS SNS URL")
        await self._fetch(url)


def describe(message: dict[str, str]) -> dict[str, Any]:
    """Log fields for a delivery (no signature, no token)."""
    return {
        "sns_type": message.get("Type"),
        "message_id": message.get("MessageId"),
        "topic": message.get("TopicArn"),
    }
