"""PagerDuty over HTTP with aiohttp: Events API v2 (trigger, resolve, change events) and the one
REST read the bot needs (the incident behind a dedup key, for its link).

aiohttp rather than the `pagerduty` PyPI client: that client is synchronous (httpx2 under it),
so every call would need a thread, and it would add a dependency tree for three POSTs and one
GET. Retries are the caller's business (the incident loop retries with the same dedup_key).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import aiohttp
import structlog

log = structlog.get_logger(__name__)

SOURCE = "dhanam-chatops"
TIMEOUT = aiohttp.ClientTimeout(total=10)


class PagerDutyError(Exception):
    """A PagerDuty call failed. ``retryable``: a 5xx, 429 or network error (try again later);
    otherwise PagerDuty refused the event itself (a 4xx) and a retry would fail the same way."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class EventSeverity(StrEnum):
    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Link:
    href: str
    text: str


@dataclass(frozen=True)
class PdIncident:
    """What the REST API says about an incident (the subset the card shows)."""

    id: str
    html_url: str
    status: str
    number: int | None = None


class PagerDuty:
    """One aiohttp session per client, opened lazily and closed with ``close``."""

    def __init__(
        self,
        *,
        routing_key: str | None,
        events_url: str = "https://events.pagerduty.com",
        api_token: str | None = None,
        api_url: str = "https://api.pagerduty.com",
        from_email: str | None = None,
    ) -> None:
        self._routing_key = routing_key
        self._events_url = events_url.rstrip("/")
        self._api_token = api_token
        self._api_url = api_url.rstrip("/")
        self._from_email = from_email
        self._session: aiohttp.ClientSession | None = None

    @property
    def enabled(self) -> bool:
        """Events can be sent (a routing key is configured)."""
        return bool(self._routing_key)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- Events API v2 ---------------------------------------------------------------------
    async def _enqueue(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if not self._routing_key:
            raise PagerDutyError("PAGERDUTY_ROUTING_KEY is not set", retryable=False)
        body = {"routing_key": self._routing_key, **body}
        try:
            async with self._http().post(self._events_url + path, json=body) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            message = f"PagerDuty unreachable ({type(exc).__name__})"
            raise PagerDutyError(message, retryable=True) from exc
        if status >= 300:
            retryable = status >= 500 or status == 429
            raise PagerDutyError(f"PagerDuty answered {status}: {text[:200]}", retryable=retryable)
        try:
            parsed: Any = json.loads(text) if text.strip() else {}
        except ValueError:
            parsed = {}
        return parsed if isinstance(parsed, dict) else {}

    async def trigger(
        self,
        *,
        dedup_key: str,
        summary: str,
        severity: EventSeverity,
        links: list[Link],
        details: dict[str, Any],
        timestamp: datetime,
    ) -> None:
        await self._enqueue(
            "/v2/enqueue",
            {
                "event_action": "trigger",
                "dedup_key": dedup_key,
                "payload": {
                    "summary": summary[:1024],
                    "source": SOURCE,
                    "severity": severity.value,
                    "timestamp": timestamp.isoformat(),
                    "component": "slack-incident",
                    "custom_details": details,
                },
                "links": [{"href": link.href, "text": link.text} for link in links],
                "client": "Dhanam ChatOps",
            },
        )
        log.info("pagerduty.triggered", dedup_key=dedup_key, severity=severity.value)

    async def resolve(self, *, dedup_key: str) -> None:
        await self._enqueue("/v2/enqueue", {"event_action": "resolve", "dedup_key": dedup_key})
        log.info("pagerduty.resolved", dedup_key=dedup_key)

    async def change(
        self, *, summary: str, timestamp: datetime, details: dict[str, Any], links: list[Link]
    ) -> None:
        await self._enqueue(
            "/v2/change/enqueue",
            {
                "payload": {
                    "summary": summary[:1024],
                    "source": SOURCE,
                    "timestamp": timestamp.isoformat(),
                    "custom_details": details,
                },
                "links": [{"href": link.href, "text": link.text} for link in links],
            },
        )

    # -- REST ------------------------------------------------------------------------------
    async def acknowledge(self, incident_id: str) -> None:
        """Acknowledge an incident through the REST API (needs the token and a From email)."""
        if not self._api_token or not self._from_email:
            raise PagerDutyError(
                "PAGERDUTY_API_TOKEN and PAGERDUTY_FROM_EMAIL are needed to acknowledge",
                retryable=False,
            )
        headers = {
            "Authorization": f"Token token={self._api_token}",
            "Accept": "application/vnd.pagerduty+json;version=2",
            "From": self._from_email,
        }
        body = {"incident": {"type": "incident_reference", "status": "acknowledged"}}
        url = f"{self._api_url}/incidents/{incident_id}"
        try:
            async with self._http().put(url, json=body, headers=headers) as response:
                status, text = response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PagerDutyError(
                f"PagerDuty unreachable ({type(exc).__name__})", retryable=True
            ) from exc
        if status >= 300:
            raise PagerDutyError(
                f"PagerDuty answered {status}: {text[:200]}", retryable=status >= 500
            )

    async def find_incident(self, dedup_key: str) -> PdIncident | None:
        """The incident PagerDuty opened for ``dedup_key`` (None without a REST token, or
        when it does not exist yet: PagerDuty opens incidents asynchronously)."""
        if not self._api_token:
            return None
        headers = {
            "Authorization": f"Token token={self._api_token}",
            "Accept": "application/vnd.pagerduty+json;version=2",
        }
        params = {"incident_key": dedup_key}
        try:
            async with self._http().get(
                self._api_url + "/incidents", params=params, headers=headers
            ) as response:
                if response.status != 200:
                    return None
                body: Any = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None
        incidents = body.get("incidents") if isinstance(body, dict) else None
        if not incidents:
            return None
        found = incidents[-1]
        return PdIncident(
            id=str(found.get("id", "")),
            html_url=str(found.get("html_url", "")),
            status=str(found.get("status", "")),
            number=found.get("incident_number"),
        )
