"""A local stand-in for PagerDuty: Events API v2, a REST API subset, v3 webhooks out.

Events API v2: ``POST /v2/enqueue`` and ``POST /v2/change/enqueue``.
REST: ``GET /incidents``, ``GET /incidents/{id}``, ``PUT /incidents/{id}``,
``POST /incidents/{id}/notes`` (``Authorization: Token token=<t>``; writes need ``From``).
Webhooks: ``send_webhook`` posts a signed v3 envelope to the bot.
"""

from __future__ import annotations

import hmac
import json
import time
import uuid
from http import HTTPStatus
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler

from sandbox.fake_pagerduty_models import (
    EVENT_INVALID,
    EVENT_THROTTLED,
    EVENT_UNRECOGNIZED,
    FakeIncident,
    PDFault,
    RecordedRequest,
    iso_seconds,
    now_utc,
    rest_error,
    validate_change_event,
    validate_event,
    webhook_envelope,
    webhook_signature,
)

__all__ = ["SANDBOX_PD_TOKEN", "FakeIncident", "FakePagerDuty", "RecordedRequest"]

SANDBOX_PD_TOKEN = "pd-sandbox-token"  # noqa: S105 - the sandbox's public fake token
_NOT_FOUND = rest_error("Not Found", 2100)
_UNAUTHORIZED = rest_error("Authentication failed", 2006)
_NO_FROM = rest_error(
    "Invalid Input Provided",
    2001,
    ["A 'From' header with the email address of a valid user is required."],
)


class FakePagerDuty:
    """In-memory PagerDuty. Incidents open on triggers, fold repeats by dedup_key."""

    def __init__(
        self,
        token: str = SANDBOX_PD_TOKEN,
        service_id: str = "PABC123",
        *,
        service_name: str = "Dhanam Platform",
        subdomain: str = "dhanam-sandbox",
        routing_services: dict[str, str] | None = None,
    ) -> None:
        self.token = token
        self.service_id = service_id
        self.service_name = service_name
        self.html_base = f"https://{subdomain}.pagerduty.com"
        self.routing_services = dict(routing_services or {})  # routing_key -> service id
        self.calls: list[RecordedRequest] = []
        self.incidents: dict[str, FakeIncident] = {}
        self._faults: list[PDFault] = []
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port: int | None = None
        self._note_seq = 0

    # ---- lifecycle -----------------------------------------------------------------

    async def start(self, port: int = 0, host: str = "127.0.0.1") -> None:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/v2/enqueue", self._enqueue)
        app.router.add_post("/v2/change/enqueue", self._change_enqueue)
        app.router.add_get("/incidents", self._list_incidents)
        app.router.add_get("/incidents/{id}", self._get_incident)
        app.router.add_put("/incidents/{id}", self._put_incident)
        app.router.add_post("/incidents/{id}/notes", self._add_note)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self._host = host
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakePagerDuty:
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
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakePagerDuty is not started")
        return f"http://{self._host}:{self._port}"

    # ---- inspection ----------------------------------------------------------------

    @property
    def events(self) -> list[RecordedRequest]:
        """Every ``POST /v2/enqueue`` (accepted, rejected and faulted)."""
        return [c for c in self.calls if c.path == "/v2/enqueue"]

    @property
    def change_events(self) -> list[RecordedRequest]:
        """Every ``POST /v2/change/enqueue``."""
        return [c for c in self.calls if c.path == "/v2/change/enqueue"]

    def incident_by_dedup(self, key: str) -> FakeIncident | None:
        """The newest incident with this dedup_key (a resolved one is kept as history)."""
        matches = [i for i in self.incidents.values() if i.dedup_key == key]
        return matches[-1] if matches else None

    def set_status(self, incident_id: str, status: str, by: str | None = None) -> FakeIncident:
        """Change an incident as a responder in PagerDuty's UI would (no webhook sent)."""
        incident = self.incidents[incident_id]
        incident.set_status(status, by)
        return incident

    # ---- faults and recording ------------------------------------------------------

    def inject(
        self,
        status: int,
        *,
        path_prefix: str | None = None,
        count: int | None = 1,
        seconds: float | None = None,
    ) -> None:
        """Answer the next ``count`` requests (``None``: until ``clear_faults``), or every
        request for ``seconds`` (``count`` then ignored), whose path starts with
        ``path_prefix`` (any path when None) with ``status``."""
        until = time.monotonic() + seconds if seconds is not None else None
        remaining = None if seconds is not None else count
        self._faults.append(PDFault(status, path_prefix, remaining, until))

    def clear_faults(self) -> None:
        self._faults.clear()

    def _take_fault(self, path: str, now: float) -> PDFault | None:
        for fault in self._faults:
            if fault.matches(path, now):
                if fault.remaining is not None and fault.until is None:
                    fault.remaining -= 1
                return fault
        return None

    @staticmethod
    def _fault_response(fault: PDFault, path: str) -> web.Response:
        if fault.status == 429:
            body = (
                EVENT_THROTTLED
                if path.startswith("/v2/")
                else rest_error("Rate Limit Exceeded", 2020)
            )
            return web.json_response(body, status=429)
        try:
            reason = HTTPStatus(fault.status).phrase
        except ValueError:
            reason = "Error"
        return web.Response(status=fault.status, text=reason)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        now = time.monotonic()
        raw = await request.text()
        try:
            body: Any = json.loads(raw) if raw.strip() else None
        except json.JSONDecodeError:
            body = raw
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        fault = self._take_fault(request.path, now)
        response: web.StreamResponse
        if fault is not None:
            response = self._fault_response(fault, request.path)
        else:
            response = await handler(request)
        answer: Any = None
        if isinstance(response, web.Response) and response.body is not None:
            try:
                answer = json.loads(bytes(response.body))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                answer = response.text
        self.calls.append(
            RecordedRequest(
                request.method, request.path, body, response.status, now, headers, answer
            )
        )
        return response

    # ---- Events API v2 -------------------------------------------------------------

    @staticmethod
    async def _json_body(request: web.Request) -> Any:
        try:
            return json.loads(await request.text())
        except json.JSONDecodeError:
            return None

    async def _enqueue(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        if not isinstance(body, dict):
            return web.json_response(EVENT_UNRECOGNIZED, status=400)
        errors = validate_event(body)
        if errors:
            return web.json_response({**EVENT_INVALID, "errors": errors}, status=400)
        action = body["event_action"]
        dedup_key = body.get("dedup_key") or uuid.uuid4().hex
        incident = self.incident_by_dedup(dedup_key)
        if incident is not None and incident.status == "resolved":
            incident = None
        if action == "trigger":
            if incident is None:
                self._open_incident(body, dedup_key)
            else:
                incident.alert_count += 1
        elif incident is not None:
            incident.set_status("acknowledged" if action == "acknowledge" else "resolved")
        return web.json_response(
            {"status": "success", "message": "Event processed", "dedup_key": dedup_key},
            status=202,
        )

    def _open_incident(self, body: dict[str, Any], dedup_key: str) -> FakeIncident:
        number = len(self.incidents) + 1
        payload = body["payload"]
        incident = FakeIncident(
            id=f"Q0ABC{number:09d}",
            number=number,
            title=str(payload["summary"])[:1024],
            dedup_key=dedup_key,
            severity=payload["severity"],
            service_id=self.routing_services.get(body["routing_key"], self.service_id),
            service_name=self.service_name,
            html_base=self.html_base,
            payload=dict(payload),
        )
        self.incidents[incident.id] = incident
        return incident

    async def _change_enqueue(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        if not isinstance(body, dict):
            return web.json_response(EVENT_UNRECOGNIZED, status=400)
        errors = validate_change_event(body)
        if errors:
            return web.json_response({**EVENT_INVALID, "errors": errors}, status=400)
        return web.json_response(
            {"status": "success", "message": "Change event processed"}, status=202
        )

    # ---- REST API ------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        return hmac.compare_digest(auth, f"Token token={self.token}")

    def _lookup(self, request: web.Request) -> tuple[FakeIncident | None, web.Response | None]:
        if not self._authorized(request):
            return None, web.json_response(_UNAUTHORIZED, status=401)
        incident = self.incidents.get(request.match_info["id"])
        if incident is None:
            return None, web.json_response(_NOT_FOUND, status=404)
        return incident, None

    async def _list_incidents(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response(_UNAUTHORIZED, status=401)
        statuses = set(request.query.getall("statuses[]", []))
        services = set(request.query.getall("service_ids[]", []))
        key = request.query.get("incident_key")
        found = [
            i.to_rest()
            for i in self.incidents.values()
            if (not statuses or i.status in statuses)
            and (not services or i.service_id in services)
            and (key is None or i.dedup_key == key)
        ]
        limit = int(request.query.get("limit", "25"))
        offset = int(request.query.get("offset", "0"))
        return web.json_response(
            {
                "incidents": found[offset : offset + limit],
                "limit": limit,
                "offset": offset,
                "total": None,
                "more": offset + limit < len(found),
            }
        )

    async def _get_incident(self, request: web.Request) -> web.Response:
        incident, problem = self._lookup(request)
        if problem is not None:
            return problem
        assert incident is not None
        return web.json_response({"incident": incident.to_rest()})

    async def _put_incident(self, request: web.Request) -> web.Response:
        incident, problem = self._lookup(request)
        if problem is not None:
            return problem
        assert incident is not None
        by = request.headers.get("From", "").strip()
        if "@" not in by:
            return web.json_response(_NO_FROM, status=400)
        body = await self._json_body(request)
        update = body.get("incident") if isinstance(body, dict) else None
        if (
            not isinstance(update, dict)
            or update.get("type") != "incident_reference"
            or update.get("status") not in ("acknowledged", "resolved")
        ):
            return web.json_response(
                rest_error(
                    "Invalid Input Provided",
                    2001,
                    ["incident must be an incident_reference with status acknowledged|resolved"],
                ),
                status=400,
            )
        if incident.status == "resolved" and update["status"] == "acknowledged":
            return web.json_response(
                rest_error("Arguments Caused Error", 2002, ["Incident Already Resolved"]),
                status=400,
            )
        incident.set_status(update["status"], by)
        return web.json_response({"incident": incident.to_rest()})

    async def _add_note(self, request: web.Request) -> web.Response:
        incident, problem = self._lookup(request)
        if problem is not None:
            return problem
        assert incident is not None
        by = request.headers.get("From", "").strip()
        if "@" not in by:
            return web.json_response(_NO_FROM, status=400)
        body = await self._json_body(request)
        note_in = body.get("note") if isinstance(body, dict) else None
        content = note_in.get("content") if isinstance(note_in, dict) else None
        if not isinstance(content, str) or not content.strip():
            return web.json_response(
                rest_error("Invalid Input Provided", 2001, ["Note content is required"]),
                status=400,
            )
        self._note_seq += 1
        note = {
            "id": f"P0NOTE{self._note_seq:04d}",
            "user": incident.user_ref(by),
            "channel": {"summary": "The PagerDuty REST API"},
            "content": content,
            "created_at": iso_seconds(now_utc()),
        }
        incident.notes.append(note)
        return web.json_response({"note": note}, status=201)

    # ---- webhooks out --------------------------------------------------------------

    def webhook_body(
        self, event_type: str, incident_id: str, agent: dict[str, Any] | None = None
    ) -> bytes:
        """The raw v3 envelope for ``event_type`` about the incident as it is now."""
        return webhook_envelope(self.incidents[incident_id], event_type, agent)

    async def send_webhook(
        self,
        target_url: str,
        event_type: str,
        incident_id: str,
        secret: str,
        agent: dict[str, Any] | None = None,
    ) -> int:
        """POST a signed v3 webhook about ``incident_id`` to ``target_url``; the status."""
        body = self.webhook_body(event_type, incident_id, agent)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "PagerDuty-Webhook/V3.0",
            "X-PagerDuty-Signature": webhook_signature(body, secret),
            "X-Webhook-Subscription": "P0WEBHK",
        }
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(target_url, data=body, headers=headers) as response,
        ):
            await response.read()
            return response.status
