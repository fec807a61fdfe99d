"""The SNS certificate cache: strict URLs, normalised keys, a bounded LRU, failures remembered,
one fetch at a time per URL (integrations.sns.CertificateCache)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from integrations.sns import (
    CERT_CACHE_SIZE,
    DOWNLOADS_PER_MINUTE,
    FAILURE_TTL,
    CertificateCache,
    FetchError,
    SnsError,
    SnsVerifier,
    certificate_url,
)
from sandbox.sns_signer import CERT_FILENAME, SnsSigner

TOPIC = "arn:aws:sns:us-east-1:123456789012:dhanam-alarms"
URL = f"https://sns.us-east-1.amazonaws.com/{CERT_FILENAME}"


def url_for(n: int, region: str = "us-east-1") -> str:
    return f"https://sns.{region}.amazonaws.com/SimpleNotificationService-{n:032x}.pem"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Fetcher:
    """Counts fetches; answers `pem`, or raises FetchError when `fail`; waits for `gate`."""

    def __init__(self, pem: bytes, *, fail: bool = False) -> None:
        self.pem = pem
        self.fail = fail
        self.urls: list[str] = []
        self.gate: asyncio.Event | None = None

    async def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise FetchError("HTTP 503")
        return self.pem


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> SnsSigner:
    return SnsSigner(tmp_path_factory.mktemp("signer"))


def notification(signer: SnsSigner, cert_url: str | None = None) -> dict[str, str]:
    message = signer.sign(
        {
            "Type": "Notification",
            "MessageId": "m-1",
            "TopicArn": TOPIC,
            "Message": "hello",
            "Timestamp": "2024-01-01T00:00:00.000Z",
        }
    )
    if cert_url is not None:
        message["SigningCertURL"] = cert_url  # not signed: the signature still verifies
    return {k: str(v) for k, v in message.items()}


def test_certificate_url_is_normalised() -> None:
    assert certificate_url(URL) == URL
    assert certificate_url(URL.replace("https://sns.us-east-1", "HTTPS://SNS.US-EAST-1")) == URL
    assert certificate_url(URL + "?") is None
    assert certificate_url(URL + "?a=1") is None
    assert certificate_url(URL + "#") is None
    assert certificate_url(URL.replace("https://", "https://u:p@")) is None
    assert certificate_url(URL.replace(".com/", ".com:443/")) is None
    assert certificate_url(URL.replace(".pem", ".pem/")) is None
    assert (
        certificate_url("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-.pem")
        is None
    )
    assert (
        certificate_url(
            "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-ab12cd34.pem"
        )
        is not None
    )


async def test_spellings_of_one_url_share_one_entry_and_one_fetch(signer: SnsSigner) -> None:
    fetch = Fetcher(signer.cert_pem)
    verifier = SnsVerifier(topics=[TOPIC], cert_dir=None, fetch=fetch)
    await verifier.verify(notification(signer))
    await verifier.verify(notification(signer, URL.replace("sns.us-east-1", "SNS.us-EAST-1")))
    assert fetch.urls == [URL]
    assert len(verifier.certificates) == 1


@pytest.mark.parametrize("suffix", ["?x=1", "?", "#frag", "?Action=Get#x"])
async def test_a_query_or_fragment_is_refused_without_fetching(
    signer: SnsSigner, suffix: str
) -> None:
    fetch = Fetcher(signer.cert_pem)
    verifier = SnsVerifier(topics=[TOPIC], cert_dir=None, fetch=fetch)
    with pytest.raises(SnsError) as caught:
        await verifier.verify(notification(signer, URL + suffix))
    assert caught.value.status == 403
    assert fetch.urls == []
    assert len(verifier.certificates) == 0


async def test_the_cache_never_holds_more_than_32_of_1000_urls(signer: SnsSigner) -> None:
    fetch = Fetcher(signer.cert_pem)
    cache = CertificateCache(cert_dir=None, fetch=fetch, downloads_per_minute=10_000)
    largest = 0
    for n in range(1000):
        await cache.key(url_for(n))
        largest = max(largest, len(cache))
    assert CERT_CACHE_SIZE == 32
    assert largest == len(cache) == 32
    assert len(fetch.urls) == 1000


async def test_least_recently_used_goes_first(signer: SnsSigner) -> None:
    fetch = Fetcher(signer.cert_pem)
    cache = CertificateCache(cert_dir=None, fetch=fetch, size=3)
    for n in range(3):
        await cache.key(url_for(n))
    await cache.key(url_for(0))  # used: now the most recent
    await cache.key(url_for(3))  # evicts 1
    fetch.urls.clear()
    await cache.key(url_for(0))
    await cache.key(url_for(2))
    await cache.key(url_for(3))
    assert fetch.urls == []
    await cache.key(url_for(1))
    assert fetch.urls == [url_for(1)]


async def test_a_failed_fetch_is_remembered_for_60_seconds(signer: SnsSigner) -> None:
    clock = Clock()
    fetch = Fetcher(signer.cert_pem, fail=True)
    verifier = SnsVerifier(
        topics=[TOPIC],
        cert_dir=None,
        fetch=fetch,
        certificates=CertificateCache(cert_dir=None, fetch=fetch, clock=clock),
    )
    for _ in range(3):
        with pytest.raises(SnsError) as caught:
            await verifier.verify(notification(signer))
        assert caught.value.status == 403
    assert fetch.urls == [URL]  # the repeats failed at once
    clock.now += FAILURE_TTL - 0.5
    with pytest.raises(SnsError):
        await verifier.verify(notification(signer))
    assert len(fetch.urls) == 1
    clock.now += 1.0  # 60.5 s after the failure: tried again, and now it works
    fetch.fail = False
    await verifier.verify(notification(signer))
    assert len(fetch.urls) == 2
    await verifier.verify(notification(signer))
    assert len(fetch.urls) == 2


async def test_a_bad_certificate_counts_as_a_failure(signer: SnsSigner) -> None:
    fetch = Fetcher(b"not a pem")
    cache = CertificateCache(cert_dir=None, fetch=fetch, clock=Clock())
    for _ in range(2):
        with pytest.raises(SnsError, match="not a PEM"):
            await cache.key(URL)
    assert len(fetch.urls) == 1


async def test_remembered_failures_are_bounded(signer: SnsSigner) -> None:
    fetch = Fetcher(signer.cert_pem, fail=True)
    cache = CertificateCache(
        cert_dir=None, fetch=fetch, failure_size=10, clock=Clock(), downloads_per_minute=1000
    )
    for n in range(50):
        with pytest.raises(SnsError):
            await cache.key(url_for(n))
    assert len(cache._failures) == 10
    with pytest.raises(SnsError):
        await cache.key(url_for(49))
    assert len(fetch.urls) == 50  # the newest are remembered
    with pytest.raises(SnsError):
        await cache.key(url_for(0))
    assert len(fetch.urls) == 51  # the oldest were forgotten


async def test_100_concurrent_verifications_of_one_url_fetch_once(signer: SnsSigner) -> None:
    fetch = Fetcher(signer.cert_pem)
    fetch.gate = asyncio.Event()
    verifier = SnsVerifier(topics=[TOPIC], cert_dir=None, fetch=fetch)
    message = notification(signer)
    tasks = [asyncio.create_task(verifier.verify(dict(message))) for _ in range(100)]
    await asyncio.sleep(0.01)
    assert fetch.urls == [URL]
    fetch.gate.set()
    await asyncio.gather(*tasks)
    assert fetch.urls == [URL]
    assert not verifier.certificates._loading


async def test_100_concurrent_verifications_share_one_failure(signer: SnsSigner) -> None:
    fetch = Fetcher(signer.cert_pem, fail=True)
    fetch.gate = asyncio.Event()
    verifier = SnsVerifier(topics=[TOPIC], cert_dir=None, fetch=fetch)
    tasks = [asyncio.create_task(verifier.verify(notification(signer))) for _ in range(100)]
    await asyncio.sleep(0.01)
    fetch.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, SnsError) and r.status == 403 for r in results)
    assert fetch.urls == [URL]


async def test_a_cancelled_verification_does_not_cancel_the_shared_fetch(
    signer: SnsSigner,
) -> None:
    fetch = Fetcher(signer.cert_pem)
    fetch.gate = asyncio.Event()
    verifier = SnsVerifier(topics=[TOPIC], cert_dir=None, fetch=fetch)
    first = asyncio.create_task(verifier.verify(notification(signer)))
    second = asyncio.create_task(verifier.verify(notification(signer)))
    await asyncio.sleep(0.01)
    first.cancel()
    await asyncio.sleep(0)
    fetch.gate.set()
    await second
    assert first.cancelled()
    assert fetch.urls == [URL]


async def test_the_certificate_directory_is_read_by_the_last_path_segment(
    signer: SnsSigner, tmp_path: Path
) -> None:
    (tmp_path / CERT_FILENAME).write_bytes(signer.cert_pem)
    fetch = Fetcher(b"", fail=True)
    verifier = SnsVerifier(topics=[TOPIC], cert_dir=tmp_path, fetch=fetch)
    await verifier.verify(notification(signer))
    other_region = URL.replace("us-east-1", "eu-west-1")
    await verifier.verify(notification(signer, other_region))  # same file, another entry
    assert fetch.urls == []
    assert len(verifier.certificates) == 2


async def test_a_missing_file_falls_back_to_the_download(signer: SnsSigner, tmp_path: Path) -> None:
    fetch = Fetcher(signer.cert_pem)
    verifier = SnsVerifier(topics=[TOPIC], cert_dir=tmp_path, fetch=fetch)
    await verifier.verify(notification(signer))
    assert fetch.urls == [URL]


async def test_downloads_of_all_urls_together_are_limited(signer: SnsSigner) -> None:
    """A body naming a new made-up certificate each time: 10 downloads, then 503s (nothing
    remembered against those URLs), one more per 6 s; a cached certificate still verifies."""
    clock = Clock()
    fetch = Fetcher(signer.cert_pem)
    cache = CertificateCache(cert_dir=None, fetch=fetch, clock=clock)
    await cache.key(url_for(0))
    refused = 0
    for n in range(1, 1000):
        try:
            await cache.key(url_for(n))
        except SnsError as exc:
            assert exc.status == 503
            refused += 1
    assert DOWNLOADS_PER_MINUTE == 10
    assert len(fetch.urls) == 10
    assert refused == 999 - 9
    await cache.key(url_for(0))  # cached: no download needed
    clock.now += 6.0
    await cache.key(url_for(500))  # one token back; not remembered as failed
    assert len(fetch.urls) == 11
