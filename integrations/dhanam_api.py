"""The Dhanam API's health endpoints, probed concurrently, each with its own time budget.

The shapes the bot reads (documented in the README, served by bot/sandbox/fake_dhanam_api.py):

  GET /health            {"status": "ok", "version": "1.2.0"}
  GET /health/database   {"status": "ok", "connections": 12, "max_connections": 100,
                          "queries_per_second": 340.5}
  GET /health/providers  {"status": "ok", "providers": {"plaid": {"status": "ok",
                          "latency_ms": 120}, "belvo": {…}, "bitso": {…}}}

`status` is "ok" when healthy; anything else ("degraded", "down") is shown as given. Extra
fields are ignored. A probe never raises: a timeout, a refused connection, a non-2xx answer or
a body of another shape becomes the probe's `error`, shown as "unavailable (reason)".
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

import aiohttp
from pydantic import BaseModel, ConfigDict, ValidationError

PROVIDERS = ("plaid", "belvo", "bitso")
OK = "ok"


class Endpoint(StrEnum):
    HEALTH = "/health"
    DATABASE = "/health/database"
    PROVIDERS = "/health/providers"


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class HealthBody(_Body):
    status: str
    version: str | None = None


class DatabaseBody(_Body):
    status: str
    connections: int | None = None
    max_connections: int | None = None
    queries_per_second: float | None = None


class ProviderBody(_Body):
    status: str
    latency_ms: float | None = None
    error: str | None = None


class ProvidersBody(_Body):
    status: str | None = None
    providers: dict[str, ProviderBody]


B = TypeVar("B", bound=_Body)


@dataclass(frozen=True)
class Probe(Generic[B]):
    endpoint: Endpoint
    url: str
    latency_ms: float | None  # None when no answer came (timeout, refused)
    http_status: int | None
    body: B | None
    error: str | None  # None: answered 2xx with a body of the expected shape

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class ApiHealth:
    base_url: str
    health: Probe[HealthBody]
    database: Probe[DatabaseBody]
    providers: Probe[ProvidersBody]


def _url(base_url: str, endpoint: Endpoint) -> str:
    return base_url.rstrip("/") + endpoint.value


def _failure(exc: Exception, budget: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"timed out after {budget:g} s"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return "connection refused"
        return f"cannot connect: {exc.os_error}"
    if isinstance(exc, aiohttp.ClientError):
        return f"{type(exc).__name__}: {exc}"[:200]
    return "answered something that is not JSON"


def _shape_error(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"unexpected answer: {where}: {first['msg']}"


async def probe(
    session: aiohttp.ClientSession,
    base_url: str,
    endpoint: Endpoint,
    model: type[B],
    budget: float,
) -> Probe[B]:
    """GET one endpoint within `budget` seconds (connect, answer and body together)."""
    url = _url(base_url, endpoint)
    started = time.perf_counter()
    status: int | None = None

    def done(body: B | None, error: str | None, answered: bool = True) -> Probe[B]:
        latency = round((time.perf_counter() - started) * 1000, 1) if answered else None
        return Probe(endpoint, url, latency, status, body, error)

    async def fetch() -> tuple[int, object]:
        async with session.get(url, allow_redirects=False) as response:
            if response.status // 100 != 2:
                return response.status, None
            return response.status, await response.json(content_type=None)

    try:
        status, payload = await asyncio.wait_for(fetch(), budget)
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        # ValueError: the body was not JSON (an answer came, so its latency is kept).
        return done(None, _failure(exc, budget), answered=isinstance(exc, ValueError))
    if payload is None:
        return done(None, f"HTTP {status}")
    try:
        return done(model.model_validate(payload), None)
    except ValidationError as exc:
        return done(None, _shape_error(exc))


async def check_api(session: aiohttp.ClientSession, base_url: str, budget: float) -> ApiHealth:
    """The three endpoints at once; each has `budget` seconds of its own."""
    health, database, providers = await asyncio.gather(
        probe(session, base_url, Endpoint.HEALTH, HealthBody, budget),
        probe(session, base_url, Endpoint.DATABASE, DatabaseBody, budget),
        probe(session, base_url, Endpoint.PROVIDERS, ProvidersBody, budget),
    )
    return ApiHealth(base_url, health, database, providers)


def new_session() -> aiohttp.ClientSession:
    """A session for one status reply: no cookies kept, no proxy from the environment."""
    return aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"Accept": "application/json", "User-Agent": "dhanam-chatops/status"},
        trust_env=False,
    )
