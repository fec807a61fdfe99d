"""A DNS stand-in on 127.0.0.1 (UDP, a free port) for the sev1 checklist's DNS step: the
sandbox and the tests point `[outage] resolver` at it.

It serves A and CNAME records from a table (`DHANAM_RECORDS`: api.dhanam.io and app.dhanam.io,
each a CNAME to the load balancer or the CloudFront distribution, with addresses from the
documentation ranges), follows a CNAME to the target's addresses in one answer, and answers
NXDOMAIN for names it does not know. `break_name` makes a name answer NXDOMAIN or SERVFAIL, or
not answer at all; `delay` holds every answer back (a slow resolver).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Literal

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import structlog

log = structlog.get_logger(__name__)

Breakage = Literal["nxdomain", "servfail", "silent"]
TTL = 60
ALB = "dhanam-production-alb-0123456789.us-east-1.elb.amazonaws.com"
CDN = "d1dhanamsandbox.cloudfront.net"
# name -> ("CNAME", target) or ("A", address, address…)
DHANAM_RECORDS: dict[str, tuple[str, ...]] = {
    "api.dhanam.io": ("CNAME", ALB),
    "app.dhanam.io": ("CNAME", CDN),
    ALB: ("A", "203.0.113.10", "203.0.113.11"),
    CDN: ("A", "198.51.100.7", "198.51.100.8"),
}


@dataclass
class DnsStandIn:
    records: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DHANAM_RECORDS))
    delay: float = 0.0  # seconds every answer is held back
    broken: dict[str, Breakage] = field(default_factory=dict)
    queries: int = 0

    def __post_init__(self) -> None:
        self._transport: asyncio.DatagramTransport | None = None
        self._pending: set[asyncio.TimerHandle] = set()

    @property
    def address(self) -> str:
        """`127.0.0.1:PORT`, as `[outage] resolver` takes it."""
        if self._transport is None:
            raise RuntimeError("the DNS stand-in is not started")
        host, port = self._transport.get_extra_info("sockname")[:2]
        return f"{host}:{port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=("127.0.0.1", 0)
        )
        self._transport = transport

    async def stop(self) -> None:
        for handle in self._pending:
            handle.cancel()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def break_name(self, name: str, how: Breakage = "nxdomain") -> None:
        self.broken[name.rstrip(".").lower()] = how

    def heal(self) -> None:
        self.broken.clear()
        self.delay = 0.0

    # -- answering --------------------------------------------------------------------------
    def answer(self, wire: bytes) -> bytes | None:
        """The response to one query, or None when it is to go unanswered."""
        self.queries += 1
        try:
            query = dns.message.from_wire(wire)
        except Exception:  # noqa: BLE001 - not DNS: ignored, as a server would
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        breakage = self.broken.get(name)
        if breakage == "silent":
            return None
        if breakage == "servfail":
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        if breakage == "nxdomain" or name not in self.records:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response.to_wire()
        self._fill(response, name, question.rdtype)
        return response.to_wire()

    def _fill(self, response: dns.message.Message, name: str, rdtype: int) -> None:
        seen: set[str] = set()
        while name in self.records and name not in seen:
            seen.add(name)
            kind, *values = self.records[name]
            owner = dns.name.from_text(name)
            if kind == "CNAME":
                target = values[0]
                response.answer.append(
                    dns.rrset.from_text(owner, TTL, "IN", "CNAME", target.rstrip(".") + ".")
                )
                name = target.rstrip(".").lower()
                continue
            if rdtype == dns.rdatatype.A and kind == "A":
                response.answer.append(dns.rrset.from_text_list(owner, TTL, "IN", "A", values))
            return


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsStandIn) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint's

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        response = self.server.answer(data)
        if response is None or self.transport is None:
            return
        transport = self.transport
        if self.server.delay <= 0:
            transport.sendto(response, addr)
            return
        loop = asyncio.get_running_loop()
        pending = self.server._pending  # the stand-in's own timers

        def send() -> None:
            pending.discard(handle)
            with contextlib.suppress(OSError):
                transport.sendto(response, addr)

        handle = loop.call_later(self.server.delay, send)
        pending.add(handle)
