"""A local stand-in for Slack's Web API and response_url endpoints (aiohttp server).

Point ``slack_sdk``'s ``AsyncWebClient(base_url=emulator.api_url)`` (or ``SLACK_API_URL``)
at it. It keeps workspace state, records every call, publishes state changes to
subscribers (the sandbox console) and can inject HTTP faults (429 exactly like Slack,
5xx as an HTML error page).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any

from aiohttp import web

from sandbox.slack_emulator_methods import SlackWorld
from sandbox.slack_emulator_models import (
    BOT_USER_ID,
    EmuChannel,
    EmulatorEvent,
    EmuMessage,
    EmuUser,
    EventKind,
    Fault,
    RecordedCall,
    dhanam_world,
)
from sandbox.slack_socket import SocketHub

__all__ = [
    "BOT_USER_ID",
    "SANDBOX_BOT_TOKEN",
    "EmuChannel",
    "EmuMessage",
    "EmuUser",
    "EmulatorEvent",
    "EventKind",
    "RecordedCall",
    "SlackEmulator",
    "dhanam_defaults",
]

SANDBOX_BOT_TOKEN = "xoxb-sandbox"  # noqa: S105 - the sandbox's public fake token
RESPONSE_URL_METHOD = "response_url"
UPLOAD_METHOD = "upload"  # the POST of a file's bytes to its upload URL, as recorded
WRITE_METHODS = frozenset({"chat.postMessage", "chat.update"})


@dataclass
class _ResponseUrl:
    channel: str
    user: str
    message_ts: str | None
    uses: int = 0
    last_ts: str | None = None  # the last message this URL posted, for replace_original


class SlackEmulator:
    """Slack Web API emulator. See the module docstring; all state is in memory."""

    def __init__(
        self,
        bot_token: str = SANDBOX_BOT_TOKEN,
        team_id: str = "T0DHANAM",
        users: list[EmuUser] | None = None,
        channels: list[EmuChannel] | None = None,
        usergroups: dict[str, list[str]] | None = None,
        *,
        response_url_max_uses: int | None = 5,
    ) -> None:
        self.bot_token = bot_token
        self.team_id = team_id
        self.response_url_max_uses = response_url_max_uses
        self.world = SlackWorld(
            team_id=team_id,
            users=list(users or []),
            channels=list(channels or []),
            usergroups=dict(usergroups or {}),
            publish=self._publish,
        )
        self.calls: list[RecordedCall] = []
        self.sockets = SocketHub()
        self._faults: list[Fault] = []
        self._subscribers: list[asyncio.Queue[EmulatorEvent]] = []
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port: int | None = None

    @classmethod
    def dhanam_defaults(cls, bot_token: str = SANDBOX_BOT_TOKEN) -> SlackEmulator:
        """The sandbox workspace: alice/bob/carol/dave, #ops #deploys #alerts #incidents
        #oncall (everyone, the bot included, is a member), user group S0SRE = bob+carol."""
        users, channels, groups = dhanam_world()
        return cls(bot_token, "T0DHANAM", users, channels, groups)

    # ---- lifecycle -----------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application()
        app.router.add_route("POST", "/api/{method}", self._handle_api)
        app.router.add_route("GET", "/api/{method}", self._handle_api)
        app.router.add_post("/response/{token}", self._handle_response_url)
        app.router.add_post("/upload/{file_id}", self._handle_upload)
        app.router.add_get("/socket", self.sockets.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self._host = host
        self._port = int(self._runner.addresses[0][1])
        self.world.uploads.upload_base = f"{self.base_url}/upload"

    async def stop(self) -> None:
        await self.sockets.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackEmulator:
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("SlackEmulator is not started")
        return f"http://{self._host}:{self._port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    # ---- events and faults ---------------------------------------------------------

    def subscribe(self) -> asyncio.Queue[EmulatorEvent]:
        queue: asyncio.Queue[EmulatorEvent] = asyncio.Queue()
        self._subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[EmulatorEvent]) -> None:
        if queue in self._subscribers:
            self._subscribers.remove(queue)

    def _publish(self, event: EmulatorEvent) -> None:
        for queue in self._subscribers:
            queue.put_nowait(event)

    def inject(
        self,
        status: int,
        *,
        method: str | None = None,
        count: int | None = 1,
        seconds: float | None = None,
        retry_after: int = 1,
    ) -> None:
        """Answer the next ``count`` calls (``None``: all calls until ``clear_faults``),
        or every call for ``seconds`` (``count`` is then ignored), to ``method`` with
        ``status``. ``method=None`` matches every Web API method and response_url posts;
        ``method="response_url"`` matches response_url posts only. Faults queue in order.
        """
        until = time.monotonic() + seconds if seconds is not None else None
        remaining = None if seconds is not None else count
        self._faults.append(Fault(status, method, remaining, until, retry_after))

    def clear_faults(self) -> None:
        self._faults.clear()

    def _take_fault(self, method: str, now: float) -> Fault | None:
        for fault in self._faults:
            if fault.matches(method, now):
                if fault.remaining is not None and fault.until is None:
                    fault.remaining -= 1
                return fault
        return None

    @staticmethod
    def _fault_response(fault: Fault) -> web.Response:
        if fault.status == 429:
            return web.Response(
                status=429,
                body=b'{"ok":false,"error":"ratelimited"}',
                headers={
                    "Retry-After": str(fault.retry_after),
                    "Content-Type": "application/json; charset=utf-8",
                },
            )
        try:
            reason = HTTPStatus(fault.status).phrase
        except ValueError:
            reason = "Error"
        page = f"<html><body><h1>{fault.status} {reason}</h1></body></html>"
        return web.Response(status=fault.status, text=page, content_type="text/html")

    def _record(
        self, method: str, params: dict[str, Any], at: float, status: int, answer: Any
    ) -> None:
        response = answer if isinstance(answer, dict) else None
        self.calls.append(RecordedCall(method, params, at, status, response))

    # ---- Web API -------------------------------------------------------------------

    @staticmethod
    async def _read_params(request: web.Request) -> tuple[dict[str, Any], str | None, bool]:
        """Query + body params, the token (Authorization header or ``token`` param), and
        whether the body was readable."""
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            raw = await request.text()
            if raw.strip():
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    return params, None, False
                if not isinstance(body, dict):
                    return params, None, False
                params.update(body)
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        token: str | None = None
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        form_token = params.pop("token", None)
        if token is None and isinstance(form_token, str) and form_token:
            token = form_token
        return params, token, True

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        now = time.monotonic()
        params, token, readable = await self._read_params(request)
        fault = self._take_fault(method, now)
        if fault is not None:
            self._record(method, params, now, fault.status, None)
            return self._fault_response(fault)
        answer: dict[str, Any]
        if method == "apps.connections.open":
            answer = self.sockets.open_connection(self.base_url, token)
            self._record(method, params, now, 200, answer)
            return web.json_response(answer)
        if not readable:
            answer = {"ok": False, "error": "invalid_json"}
        elif method not in self.world.handlers:
            answer = {"ok": False, "error": "unknown_method"}
        elif token is None:
            answer = {"ok": False, "error": "not_authed"}
        elif token != self.bot_token:
            answer = {"ok": False, "error": "invalid_auth"}
        else:
            answer = self.world.call(method, params)
        self._record(method, params, now, 200, answer)
        return web.json_response(answer)

    async def _handle_upload(self, request: web.Request) -> web.Response:
        """The upload URL files.getUploadURLExternal hands out: the file's bytes, POSTed."""
        data = await request.read()
        status, body = self.world.uploads.receive(request.match_info["file_id"], data)
        self._record(
            UPLOAD_METHOD,
            {"file_id": request.match_info["file_id"]},
            time.monotonic(),
            status,
            None,
        )
        return web.Response(status=status, text=body)

    # ---- response_url --------------------------------------------------------------

    def new_response_url(self, channel_id: str, user_id: str, message_ts: str | None = None) -> str:
        """Mint a response_url for a slash command (no ``message_ts``) or a button click
        on message ``message_ts``. Usable ``response_url_max_uses`` times, like Slack."""
        token = secrets.token_urlsafe(12)
        self._response_urls[token] = _ResponseUrl(channel_id, user_id, message_ts)
        return f"{self.base_url}/response/{token}"

    def _find_any(self, channel: str, ts: str | None) -> EmuMessage | None:
        if ts is None:
            return None
        return self.world.find_message(channel, ts) or self.world.find_ephemeral(channel, ts)

    def _apply_response(self, target: _ResponseUrl, body: dict[str, Any]) -> tuple[int, str]:
        text = body.get("text") if isinstance(body.get("text"), str) else None
        blocks = body.get("blocks")
        original = self._find_any(target.channel, target.message_ts or target.last_ts)
        if body.get("delete_original"):
            if original is None:
                return 404, "message_not_found"
            self.world.delete_message(original)
            return 200, "ok"
        if text is None and not blocks:
            return 400, "no_text"
        refused = SlackWorld.refuse_message(text, blocks)
        if refused is not None:  # Slack answers a refused response_url post with 400 and the code
            return 400, str(refused["error"])
        if body.get("replace_original") and original is not None:
            self.world.edit_message(original, text, blocks)
            return 200, "ok"
        thread_ts = body.get("thread_ts")
        if not isinstance(thread_ts, str) or not self.world.find_message(target.channel, thread_ts):
            thread_ts = None
        in_channel = body.get("response_type") == "in_channel"
        msg = EmuMessage(
            target.channel,
            self.world.next_ts(),
            text or "",
            blocks,
            thread_ts,
            ephemeral_to=None if in_channel else target.user,
            via=RESPONSE_URL_METHOD,
        )
        self.world.add_message(msg)
        target.last_ts = msg.ts
        return 200, "ok"

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        raw = await request.text()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError:
            body = None
        params: dict[str, Any] = body if isinstance(body, dict) else {"_raw": raw}
        fault = self._take_fault(RESPONSE_URL_METHOD, now)
        if fault is not None:
            self._record(RESPONSE_URL_METHOD, params, now, fault.status, None)
            return self._fault_response(fault)
        target = self._response_urls.get(request.match_info["token"])
        if target is None:
            status, text = 404, "no_service"
        elif self.response_url_max_uses is not None and target.uses >= self.response_url_max_uses:
            status, text = 404, "used_url"
        elif not isinstance(body, dict):
            status, text = 400, "invalid_payload"
        else:
            target.uses += 1
            status, text = self._apply_response(target, body)
        answer = {"ok": True} if status == 200 else {"ok": False, "error": text}
        self._record(RESPONSE_URL_METHOD, params, now, status, answer)
        return web.Response(status=status, text=text, content_type="text/plain")

    # ---- inspection ----------------------------------------------------------------

    def calls_to(self, method: str) -> list[RecordedCall]:
        return [c for c in self.calls if c.method == method]

    def channel_by_name(self, name: str) -> EmuChannel | None:
        name = name.removeprefix("#")
        return next((c for c in self.world.channels.values() if c.name == name), None)

    def _channel_id(self, ref: str) -> str | None:
        if ref in self.world.channels:
            return ref
        if ref in self.world.users:
            return "D" + ref[1:]
        found = self.channel_by_name(ref)
        return found.id if found else None

    def messages(self, channel: str, *, include_deleted: bool = False) -> list[EmuMessage]:
        """Channel history (top-level messages and thread replies, oldest first), by
        channel id, name (``ops``/``#ops``) or user id (the bot's DM with that user).
        Ephemeral messages are not history: see ``ephemerals``."""
        cid = self._channel_id(channel)
        history = self.world.history.get(cid, []) if cid else []
        return [m for m in history if include_deleted or not m.deleted]

    def thread(self, channel: str, ts: str) -> list[EmuMessage]:
        """The parent message ``ts`` followed by its replies."""
        return [m for m in self.messages(channel) if ts in (m.ts, m.thread_ts)]

    def ephemerals(self, user_id: str, *, include_deleted: bool = False) -> list[EmuMessage]:
        return [
            m
            for m in self.world.ephemeral
            if m.ephemeral_to == user_id and (include_deleted or not m.deleted)
        ]

    def published_view(self, user_id: str) -> dict[str, Any] | None:
        return self.world.published.get(user_id)

    def max_writes_in_window(self, channel: str, window: float = 1.0) -> int:
        """Most successful chat.postMessage/chat.update calls (thread replies included)
        to one channel within any ``window``-second sliding window."""
        cid = self._channel_id(channel)
        times = sorted(
            c.at
            for c in self.calls
            if c.method in WRITE_METHODS
            and c.ok
            and c.response is not None
            and c.response.get("channel") == cid
        )
        best = 0
        start = 0
        for end, t in enumerate(times):
            while t - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best


def dhanam_defaults(bot_token: str = SANDBOX_BOT_TOKEN) -> SlackEmulator:
    """Module-level alias of ``SlackEmulator.dhanam_defaults``."""
    return SlackEmulator.dhanam_defaults(bot_token)
