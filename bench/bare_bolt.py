"""The framework floor: a slack-bolt AsyncApp whose only listener acks ``/dhanam``.

Served exactly as the bot serves Bolt (bot/app.py ``slack_events``): an aiohttp
``web.Application`` behind ``web.AppRunner(access_log=None)``, a ``POST /slack/events``
route that builds an ``AsyncBoltRequest`` and awaits ``app.async_dispatch``. Bolt is
configured as the bot configures it (signature verification on,
``process_before_response=False``, a token-carrying ``AsyncWebClient`` pointed at the
Slack emulator, so ``auth.test`` runs once and is cached). ``GET /health`` answers 200
for readiness polling only.

    SLACK_SIGNING_SECRET=... python bench/bare_bolt.py --port P --api-url URL [--token T]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from aiohttp import web
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

BOLT = web.AppKey("bolt", AsyncApp)


def create_bolt(token: str, signing_secret: str, api_url: str, command: str) -> AsyncApp:
    app = AsyncApp(
        client=AsyncWebClient(token=token, base_url=api_url),
        signing_secret=signing_secret,
        process_before_response=False,
    )

    @app.command(command)
    async def on_command(ack: AsyncAck) -> None:
        await ack()

    return app


async def slack_events(request: web.Request) -> web.Response:
    raw = await request.read()
    bolt_request = AsyncBoltRequest(
        body=raw.decode("utf-8"),
        query=request.query_string,
        headers={k.lower(): v for k, v in request.headers.items()},
    )
    response = await request.app[BOLT].async_dispatch(bolt_request)
    content_type = response.headers.get("content-type", ["application/json"])[0]
    return web.Response(
        status=response.status,
        body=response.body.encode("utf-8"),
        content_type=content_type.split(";")[0],
    )


async def health(_: web.Request) -> web.Response:
    return web.json_response({"status": "healthy"})


def create_app(bolt: AsyncApp) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[BOLT] = bolt
    app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/health", health)
    return app


async def serve(host: str, port: int, bolt: AsyncApp) -> None:
    runner = web.AppRunner(create_app(bolt), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        session = getattr(bolt.client, "session", None)
        if session is not None:
            await session.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="bare slack-bolt app that only acks")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-url", required=True, help="Slack Web API base URL (emulator)")
    parser.add_argument("--token", default=os.environ.get("SLACK_BOT_TOKEN", "xoxb-sandbox"))
    parser.add_argument("--command", default="/dhanam")
    args = parser.parse_args(argv)
    secret = os.environ.get("SLACK_SIGNING_SECRET")
    if not secret:
        print("bare_bolt: SLACK_SIGNING_SECRET is required", file=sys.stderr)
        return 1
    bolt = create_bolt(args.token, secret, args.api_url, args.command)
    asyncio.run(serve(args.host, args.port, bolt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
