"""The Dhanam API's health endpoints, probed concurrently, each with its own time budget.

The documented shapes (README "Status", from the deployment guide; served by default by
sandbox/fake_dhanam_api.py):

  GET /health            {"status": "healthy", "timestamp": "2024-01-01T12:00:00Z"}
  GET /health/database   {"status": "healthy", "connections": 5, "queries_per_second": 150}
  GET /health/providers  {"plaid": "healthy", "belvo": "healthy", "bitso": "healthy"}

Richer answers are tolerated: extra keys anywhere, per-provider objects
(`{"bitso": {"status": "degraded", "latency_ms": 95}}`), the providers nested under a
`providers` key with an overall `status`, a `version`, `max_connections`.

A status word is read case-insensitively: `healthy`/`ok`/`up`/`pass` are good and normalised
to "ok", `degraded`/`warn` is "degraded", anything else (a word such as "down" or "unhealthy" is
kept as given; a missing or non-text status becomes "down") is down — see `level()`.
A probe never raises: a timeout, a refused connection, a non-2xx answer or a body of another
shape becomes the probe's `error`, shown as "unavailable (reason)".
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

import aiohttp
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

PROVIDERS = ("plaid", "belvo", "bitso")
OK = "ok"
DEGRADED = "degraded"
DOWN = "down"
_GOOD_WORDS = frozenset({"ok", "healthy", "up", "pass", "passing"})
_DEGRADED_WORDS = frozenset({"degraded", "warn", "warning"})
_STATUS_WORDS = _GOOD_WORDS | _DEGRADED_WORDS | {"down", "unhealthy", "error", "fail", "failing"}
# Keys of a flat providers map that describe the answer, not a provider.
_NOT_PROVIDERS = frozenset({"status", "timestamp", "time", "checked_at", "version", "providers"})


class Level(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"


def normalise_status(value: object) -> str:
    """An endpoint's status word as shown: good words become "ok", degraded ones "degraded",
    other text is kept (lower case), anything that is not text becomes "down"."""
    if not isinstance(value, str) or not value.strip():
        return DOWN
    word = value.strip().lower()
    if word in _GOOD_WORDS:
        return OK
    if word in _DEGRADED_WORDS:
        return DEGRADED
    return word[:40]


def level(status: str | None) -> Level:
    """ok, degraded or down for a (normalised or raw) status word; None (no answer) is down."""
    word = normalise_status(status)
    if word == OK:
        return Level.OK
    if word == DEGRADED:
        return Level.DEGRADED
    return Level.DOWN


def _number(value: object) -> object:
    """A count or rate kept when numeric, dropped (None) when of a richer or odd shape."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


class Endpoint(StrEnum):
    HEALTH = "/health"
    DATABASE = "/health/database"
    PROVIDERS = "/health/providers"


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class _StatusBody(_Body):
    status: str

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: object) -> str:
        return normalise_status(value)


class HealthBody(_StatusBody):
    timestamp: str | None = None
    version: str | None = None

    @field_validator("timestamp", "version", mode="before")
    @classmethod
    def _text(cls, value: object) -> str | None:
        return None if value is None or isinstance(value, dict | list) else str(value)[:64]


class DatabaseBody(_StatusBody):
    connections: int | None = None
    max_connections: int | None = None
    queries_per_second: float | None = None

    @field_validator("queries_per_second", mode="before")
    @classmethod
    def _rate(cls, value: object) -> object:
        return _number(value)

    @field_validator("connections", "max_connections", mode="before")
    @classmethod
    def _count(cls, value: object) -> int | None:
        number = _number(value)
        return round(number) if isinstance(number, int | float) else None


class ProviderBody(_StatusBody):
    latency_ms: float | None = None
    error: str | None = None

    @field_validator("latency_ms", mode="before")
    @classmethod
    def _latency(cls, value: object) -> object:
        return _number(value)

    @field_validator("error", mode="before")
    @classmethod
    def _error(cls, value: object) -> str | None:
        return None if value is None else str(value)[:200]


class ProvidersBody(_Body):
    """Providers by name; read from the documented flat map or a richer nested answer."""

    status: str | None = None
    providers: dict[str, ProviderBody]

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data  # pydantic reports the wrong shape
        nested = data.get("providers")
        source: dict[str, Any] = nested if isinstance(nested, dict) else data
        providers: dict[str, object] = {}
        for name, value in source.items():
            if not isinstance(name, str) or (source is data and name in _NOT_PROVIDERS):
                continue
            if isinstance(value, ProviderBody):
                providers[name] = value
            elif isinstance(value, dict):
                providers[name] = {**value, "status": value.get("status")}
            elif name in PROVIDERS or source is nested:
                providers[name] = {"status": value}  # not text: "down"
            elif isinstance(value, str) and value.strip().lower() in _STATUS_WORDS:
                providers[name] = {"status": value}
        if not providers:
            raise ValueError("no providers in the answer")
        overall = data.get("status")
        return {
            "status": normalise_status(overall) if overall is not None else None,
            "providers": providers,
        }


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
