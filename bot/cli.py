"""`dhanam-bot` / `python -m bot`: serve, socket, sandbox, check-config.

Start-up problems (a missing secret, an invalid config) end with one clear line on stderr and
exit status 1 — never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import structlog
from aiohttp import web

from bot.logs import configure_logging
from core.config import Config, load_config
from core.errors import ConfigError
from core.settings import Mode, Settings, load, load_settings

log = structlog.get_logger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dhanam-bot", description="Dhanam ChatOps bot")
    sub = parser.add_subparsers(dest="mode", required=True)
    serve = sub.add_parser("serve", help="HTTP mode: Slack at POST /slack/events")
    serve.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a server in a container
    serve.add_argument("--port", type=int, default=None)
    socket = sub.add_parser("socket", help="Socket Mode; webhooks and health still on PORT")
    socket.add_argument("--host", default="0.0.0.0")  # noqa: S104
    socket.add_argument("--port", type=int, default=None)
    sandbox = sub.add_parser("sandbox", help="the whole bot on this machine, in a terminal")
    sandbox.add_argument("--script", type=Path, default=None, help="replay console lines")
    check = sub.add_parser("check-config", help="validate a config file")
    check.add_argument("path", nargs="?", type=Path, default=None)
    return parser


def _fail(errors: list[str]) -> int:
    for line in errors:
        print(f"dhanam-bot: {line}", file=sys.stderr)
    return 1


def check_config(path: Path | None) -> int:
    origin, hint = "the path given to check-config", ""
    if path is None:
        try:
            settings = load_settings()
        except ConfigError as exc:
            return _fail(exc.errors)
        path = settings.dhanam_config
        origin, hint = settings.config_origin()
    try:
        config = load_config(path, origin=origin, hint=hint)
    except ConfigError as exc:
        if not exc.errors[0].startswith("config file"):  # the file reads: say which one
            count = len(exc.errors)
            print(f"{path}: {count} error{'' if count == 1 else 's'}", file=sys.stderr)
        return _fail(exc.errors)
    print(f"{path}: OK")
    for line in config.summary():
        print(f"  {line}")
    return 0


async def _serve(settings: Settings, config: Config, mode: Mode, host: str, port: int) -> None:
    from bot.app import BOLT, create_app  # noqa: PLC0415 - keep check-config start-up light

    app = create_app(settings, config)
    runner = web.AppRunner(app, access_log=None, handle_signals=True)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("server.listening", host=host, port=port, mode=str(mode))
    try:
        if mode is Mode.SOCKET:
            from slack_bolt.adapter.socket_mode.async_handler import (  # noqa: PLC0415
                AsyncSocketModeHandler,
            )

            assert settings.slack_app_token is not None
            handler = AsyncSocketModeHandler(app[BOLT], settings.slack_app_token.get_secret_value())
            await handler.start_async()  # type: ignore[no-untyped-call]
        else:
            await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.mode == "check-config":
        return check_config(args.path)
    if args.mode == "sandbox":
        try:
            # Lazily: the sandbox is not part of the runtime package (nor of the image).
            from sandbox.console import run_sandbox  # noqa: PLC0415
        except ModuleNotFoundError as exc:
            if exc.name not in ("sandbox", "examples", "moto", "fakeredis"):
                raise
            return _fail(
                [
                    "the sandbox is not installed here: it runs from a clone of the repository"
                    " (git clone …; make sandbox), which installs it with its stand-ins"
                    f" (missing: {exc.name})"
                ]
            )
        return run_sandbox(script=args.script)
    mode = Mode(args.mode)
    try:
        settings, config = load(mode)  # the TOML is read once, here
    except ConfigError as exc:
        # One line at start-up; `check-config` lists every problem.
        more = len(exc.errors) - 1
        suffix = f" (and {more} more: run `dhanam-bot check-config`)" if more else ""
        return _fail([exc.errors[0] + suffix])
    configure_logging(settings.log_format, settings.log_level)
    port = args.port or settings.port
    try:
        asyncio.run(_serve(settings, config, mode, args.host, port))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        return _fail([f"cannot listen on {args.host}:{port}: {exc.strerror}"])
    return 0
