"""A stand-in for the Dhanam API's health endpoints, for the sandbox, the tests and the bench.

An aiohttp server on 127.0.0.1 and a free port serving `/health`, `/health/database` and
`/health/providers` in the documented shapes (README.md, "Status"; integrations/dhanam_api.py),
also under any one-segment prefix (`/production/health`), so each environment can get a base URL
of its own (`http://127.0.0.1:PORT/production`) and a mode of its own:

  healthy   everything healthy, the deployment guide's exact answers:
              /health            {"status": "healthy", "timestamp": "…"}
              /health/database   {"status": "healthy", "connections": 5, "queries_per_second": 150}
              /health/providers  {"plaid": "healthy", "belvo": "healthy", "bitso": "healthy"}
  degraded  the same shapes, /health and provider bitso say "degraded"
  rich      healthy, in a richer shape the bot must tolerate (extra keys, a version, per-provider
            objects with status/latency_ms nested under "providers"); bitso answers "degraded"
  slow      every answer waits `slow_seconds` (past the bot's 2 s budget)
  error     HTTP 500 with a JSON error body
  stopped   the port refuses connections, for every prefix (the listener is closed; setting
            every stopped prefix to another mode opens it again on the same port)

`delay` adds latency to every answer in any mode (the bench uses it).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from enum import StrEnum
from typing import Any

from aiohttp import web

from core.config import Config, parse_config

PROVIDERS = ("plaid", "belvo", "bitso")
RICH_PROVIDERS: dict[str, dict[str, Any]] = {
    "plaid": {"status": "ok", "latency_ms": 120},
    "belvo": {"status": "healthy", "latency_ms": 180, "region": "mx"},
    "bitso": {"status": "degraded", "latency_ms": 950, "error": "slow quotes"},
}
VERSION = "1.2.0"
TIMESTAMP = "2024-01-01T12:00:00Z"


class ApiMode(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    RICH = "rich"
    SLOW = "slow"
    ERROR = "error"
    STOPPED = "stopped"


def health_body(endpoint: str, mode: ApiMode) -> dict[str, Any]:
    """What the API answers on `endpoint` (health, database, providers) in a mode that answers."""
    if mode is ApiMode.RICH:
        return _rich_body(endpoint)
    degraded = mode is ApiMode.DEGRADED
    overall = "degraded" if degraded else "healthy"
    if endpoint == "health":
        return {"status": overall, "timestamp": TIMESTAMP}
    if endpoint == "database":
        return {"status": "healthy", "connections": 5, "queries_per_second": 150}
    providers = dict.fromkeys(PROVIDERS, "healthy")
    if degraded:
        providers["bitso"] = "degraded"
    return providers


def _rich_body(endpoint: str) -> dict[str, Any]:
    if endpoint == "health":
        return {"status": "ok", "timestamp": TIMESTAMP, "version": VERSION, "uptime_s": 86_400}
    if endpoint == "database":
        return {
            "status": "ok",
            "connections": 12,
            "max_connections": 100,
            "queries_per_second": 340.5,
            "replication_lag_ms": 4,
        }
    providers = {name: dict(body) for name, body in RICH_PROVIDERS.items()}
    return {"status": "degraded", "checked_at": TIMESTAMP, "providers": providers}


class FakeDhanamApi:
    def __init__(self, *, mode: ApiMode = ApiMode.HEALTHY, slow_seconds: float = 5.0) -> None:
        self.default_mode = mode
        self.modes: dict[str, ApiMode] = {}  # prefix ("production") -> mode
        self.slow_seconds = slow_seconds
        self.delay = 0.0
        self.requests: Counter[str] = Counter()  # path -> count
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def base_url(self, prefix: str | None = None) -> str:
        return f"{self.url}/{prefix}" if prefix else self.url

    def mode(self, prefix: str | None = None) -> ApiMode:
        return self.modes.get(prefix or "", self.default_mode)

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        # Short shutdown and cancelled handlers: a "slow" answer must not hold up stop().
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=0.2, handler_cancellation=True
        )
        await self._runner.setup()
        await self._listen(port)

    async def _listen(self, port: int) -> None:
        assert self._runner is not None, "start() first"
        self._site = web.TCPSite(self._runner, "127.0.0.1", port, reuse_address=True)
        await self._site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = self._site = None

    async def set_mode(self, mode: ApiMode, prefix: str | None = None) -> None:
        """Switch the mode of one prefix (None: the default for every prefix)."""
        if prefix is None:
            self.default_mode = mode
            self.modes.clear()
        else:
            self.modes[prefix] = mode
        stopped = self.default_mode is ApiMode.STOPPED or ApiMode.STOPPED in self.modes.values()
        if stopped and self._site is not None:
            await self._site.stop()  # refuse connections, keep the port number
            self._site = None
        elif not stopped and self._site is None and self._runner is not None:
            await self._listen(self._port)

    async def __aenter__(self) -> FakeDhanamApi:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle(self, request: web.Request) -> web.Response:
        parts = [p for p in request.path.split("/") if p]
        prefix = ""
        if parts and parts[0] != "health":
            prefix, parts = parts[0], parts[1:]
        if not parts or parts[0] != "health" or len(parts) > 2:
            return web.json_response({"error": "not_found"}, status=404)
        endpoint = parts[1] if len(parts) == 2 else "health"
        if endpoint not in ("health", "database", "providers"):
            return web.json_response({"error": "not_found"}, status=404)
        self.requests[request.path] += 1
        mode = self.mode(prefix)
        if self.delay:
            await asyncio.sleep(self.delay)
        if mode is ApiMode.SLOW:
            await asyncio.sleep(self.slow_seconds)
        if mode is ApiMode.ERROR:
            return web.json_response({"error": "internal_error"}, status=500)
        return web.json_response(health_body(endpoint, mode))


def pointed_at(config: Config, api: FakeDhanamApi) -> Config:
    """`config` with every environment's api_base_url on the fake, one prefix per environment."""
    data = config.model_dump(mode="json")
    for name, env in data["environments"].items():
        env["api_base_url"] = api.base_url(name)
    return parse_config(data)
