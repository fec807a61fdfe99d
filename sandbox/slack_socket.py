"""Socket Mode for the Slack emulator: apps.connections.open hands out a WebSocket URL; the hub
sends envelopes (slash commands, interactivity, events) down it and waits for the app's ack,
as Slack's Socket Mode does. Hand-written: there is no local Socket Mode server to reuse."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from aiohttp import WSMsgType, web

APP_TOKEN_PREFIX = "xapp-"  # noqa: S105 - a token prefix, not a secret


class SocketHub:
    def __init__(self) -> None:
        self._sockets: list[web.WebSocketResponse] = []
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._connected = asyncio.Event()

    def open_connection(self, base_url: str, token: str | None) -> dict[str, Any]:
        """The answer of apps.connections.open (it takes an app-level token)."""
        if not token or not token.startswith(APP_TOKEN_PREFIX):
            return {"ok": False, "error": "not_allowed_token_type"}
        ws_url = base_url.replace("http://", "ws://") + f"/socket?ticket={uuid.uuid4().hex}"
        return {"ok": True, "url": ws_url}

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._sockets) + 1,
                "connection_info": {"app_id": "A0DHANAM"},
                "debug_info": {"host": "emulator", "approximate_connection_time": 3600},
            }
        )
        self._sockets.append(ws)
        self._connected.set()
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                data = json.loads(message.data)
                waiter = self._acks.pop(str(data.get("envelope_id", "")), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(data.get("payload") or {})
        finally:
            self._sockets.remove(ws)
            if not self._sockets:
                self._connected.clear()
        return ws

    async def wait_connected(self, limit: float = 10.0) -> None:
        await asyncio.wait_for(self._connected.wait(), limit)

    async def send(self, kind: str, payload: dict[str, Any], limit: float = 5.0) -> dict[str, Any]:
        """Deliver one envelope (kind: slash_commands, interactive, events_api) to a connected
        app and return the payload of its ack."""
        if not self._sockets:
            raise RuntimeError("no Socket Mode connection")
        envelope_id = uuid.uuid4().hex
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = waiter
        await self._sockets[-1].send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "accepts_response_payload": kind != "events_api",
                "payload": payload,
                "retry_attempt": 0,
                "retry_reason": "",
            }
        )
        return await asyncio.wait_for(waiter, limit)

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
