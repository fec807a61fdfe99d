"""DNS lookups for the sev1 checklist: does a hostname resolve, to what, and how fast.

dnspython's asyncio resolver, asking either the system's resolvers (/etc/resolv.conf) or one
given address (`[outage] resolver = "10.0.0.2"` or `"127.0.0.1:5353"`, which the sandbox and the
tests point at their DNS stand-in). A lookup asks for A records, then AAAA when there are none;
its outcome is a value (`Lookup`), never an exception: NXDOMAIN, no records, every server failing
(SERVFAIL, refused) and no answer in time are each their own `LookupKind`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

import dns.asyncresolver
import dns.exception
import dns.resolver
import structlog

log = structlog.get_logger(__name__)


class LookupKind(StrEnum):
    OK = "ok"
    NXDOMAIN = "nxdomain"  # the name does not exist
    NO_ANSWER = "no answer"  # the name exists, with no A or AAAA record
    FAILED = "failed"  # every server failed (SERVFAIL, REFUSED, unreachable)
    TIMEOUT = "timeout"  # no answer within the time given


@dataclass(frozen=True)
class Lookup:
    hostname: str
    kind: LookupKind
    addresses: tuple[str, ...] = ()
    canonical: str | None = None  # where a CNAME chain led, when it did
    ms: float = 0.0
    detail: str = ""  # what the failure was, in the resolver's words


class DnsResolver:
    """`resolve(hostname, limit)`; `nameserver` None asks the system's resolvers."""

    def __init__(self, nameserver: tuple[str, int] | None = None) -> None:
        self.nameserver = nameserver
        self._resolver: dns.asyncresolver.Resolver | None = None

    def _get(self) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            if self.nameserver is None:
                resolver = dns.asyncresolver.Resolver(configure=True)
            else:
                resolver = dns.asyncresolver.Resolver(configure=False)
                resolver.nameservers = [self.nameserver[0]]
                resolver.port = self.nameserver[1]
            resolver.cache = None  # every check asks afresh
            self._resolver = resolver
        return self._resolver

    async def resolve(self, hostname: str, limit: float) -> Lookup:  # noqa: PLR0911
        """`hostname`'s A (else AAAA) records, asking for at most `limit` seconds."""
        started = time.perf_counter()

        def ms() -> float:
            return round((time.perf_counter() - started) * 1000, 1)

        try:
            resolver = self._get()
        except dns.resolver.NoResolverConfiguration as exc:
            return Lookup(hostname, LookupKind.FAILED, ms=ms(), detail=f"no resolver: {exc}")
        deadline = time.monotonic() + limit
        for record in ("A", "AAAA"):
            left = max(deadline - time.monotonic(), 0.001)
            try:
                answer = await resolver.resolve(hostname, record, search=False, lifetime=left)
            except dns.resolver.NXDOMAIN:
                return Lookup(hostname, LookupKind.NXDOMAIN, ms=ms(), detail="NXDOMAIN")
            except dns.resolver.NoAnswer:
                continue
            except dns.resolver.NoNameservers as exc:
                return Lookup(hostname, LookupKind.FAILED, ms=ms(), detail=_first_line(exc))
            except dns.exception.Timeout:
                return Lookup(hostname, LookupKind.TIMEOUT, ms=ms(), detail=f"{limit:g} s")
            except dns.exception.DNSException as exc:
                return Lookup(hostname, LookupKind.FAILED, ms=ms(), detail=_first_line(exc))
            addresses = tuple(sorted(str(r) for r in answer))
            canonical = answer.canonical_name.to_text(omit_final_dot=True)
            return Lookup(
                hostname,
                LookupKind.OK,
                addresses,
                canonical if canonical != hostname else None,
                ms(),
            )
        return Lookup(hostname, LookupKind.NO_ANSWER, ms=ms(), detail="no A or AAAA record")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]
