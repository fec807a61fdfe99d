"""The fake PagerDuty, driven over HTTP with aiohttp, checked against real PD samples."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sandbox.fake_pagerduty import FakePagerDuty

DATA = Path(__file__).resolve().parents[1] / "data" / "pagerduty"
ROUTING_KEY = "0123456789abcdef0123456789abcdef"
AUTH = {"Authorization": "Token token=pd-sandbox-token", "From": "bob@dhanam.dev"}


def _trigger(dedup_key: str | None = None, severity: str = "critical") -> dict[str, Any]:
    event: dict[str, Any] = {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "payload": {
            "summary": "api 5xx rate above 5% in prod",
            "source": "cloudwatch:api-5xx",
            "severity": severity,
        },
    }
    if dedup_key is not None:
        event["dedup_key"] = dedup_key
    return event


@pytest.fixture
async def pd() -> AsyncIterator[FakePagerDuty]:
    async with FakePagerDuty() as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _enqueue(
    http: aiohttp.ClientSession, pd: FakePagerDuty, event: Any
) -> tuple[int, dict[str, Any]]:
    async with http.post(pd.url + "/v2/enqueue", json=event) as resp:
        return resp.status, await resp.json()


async def test_trigger_opens_incident(pd: FakePagerDuty, http: aiohttp.ClientSession) -> None:
    status, body = await _enqueue(http, pd, _trigger("api-5xx"))
    assert status == 202
    assert body == {"status": "success", "message": "Event processed", "dedup_key": "api-5xx"}
    sample = json.loads(
        (DATA / "events-v2-response-202-success.api-schema-example.json").read_text()
    )
    assert set(body) == set(sample)

    incident = pd.incident_by_dedup("api-5xx")
    assert incident is not None
    assert incident.id.startswith("Q0ABC")
    assert incident.number == 1
    assert incident.status == "triggered"
    assert incident.title == "api 5xx rate above 5% in prod"
    assert incident.urgency == "high"
    assert incident.service_id == "PABC123"
    assert incident.html_url.endswith(f"/incidents/{incident.id}")
    assert pd.incidents == {incident.id: incident}

    status, body = await _enqueue(http, pd, _trigger(severity="warning"))
    assert status == 202
    assert len(body["dedup_key"]) == 32  # generated when the trigger has none
    low = pd.incident_by_dedup(body["dedup_key"])
    assert low is not None
    assert low.urgency == "low"
    assert len(pd.events) == 2


async def test_real_sample_trigger_is_accepted(
    pd: FakePagerDuty, http: aiohttp.ClientSession
) -> None:
    sample = json.loads((DATA / "events-v2-trigger-request.api-schema-example.json").read_text())
    status, body = await _enqueue(http, pd, sample)
    assert status == 202
    assert body["dedup_key"] == "srv01/mysql"


async def test_dedup_ack_resolve(pd: FakePagerDuty, http: aiohttp.ClientSession) -> None:
    for _ in range(3):
        assert (await _enqueue(http, pd, _trigger("db-latency")))[0] == 202
    assert len(pd.incidents) == 1
    incident = pd.incident_by_dedup("db-latency")
    assert incident is not None
    assert incident.alert_count == 3

    ack = {"routing_key": ROUTING_KEY, "event_action": "acknowledge", "dedup_key": "db-latency"}
    assert (await _enqueue(http, pd, ack))[0] == 202
    assert incident.status == "acknowledged"
    resolve = {**ack, "event_action": "resolve"}
    assert (await _enqueue(http, pd, resolve))[0] == 202
    assert incident.status == "resolved"

    # a trigger after resolution opens a fresh incident with the same dedup_key
    await _enqueue(http, pd, _trigger("db-latency"))
    assert len(pd.incidents) == 2
    newest = pd.incident_by_dedup("db-latency")
    assert newest is not None
    assert newest.id != incident.id
    assert newest.status == "triggered"


async def test_bad_events_answer_400(pd: FakePagerDuty, http: aiohttp.ClientSession) -> None:
    sample = json.loads((DATA / "events-v2-response-400-invalid-event.go-pdagent.json").read_text())
    status, body = await _enqueue(http, pd, {**_trigger("x"), "routing_key": "short"})
    assert status == 400
    assert body == sample  # same status, message and error text as the real response

    bad_payload = _trigger("x")
    bad_payload["payload"]["severity"] = "fatal"
    del bad_payload["payload"]["source"]
    status, body = await _enqueue(http, pd, bad_payload)
    assert status == 400
    assert body["status"] == "invalid event"
    assert any("source" in e for e in body["errors"])
    assert any("severity" in e for e in body["errors"])

    no_dedup = {"routing_key": ROUTING_KEY, "event_action": "resolve"}
    status, body = await _enqueue(http, pd, no_dedup)
    assert status == 400
    assert body["errors"] == ["'dedup_key' is missing or blank"]

    status, body = await _enqueue(http, pd, {**no_dedup, "event_action": "snooze"})
    assert status == 400

    async with http.post(pd.url + "/v2/enqueue", data=b"{not json") as resp:
        assert resp.status == 400
        unrecognized = await resp.json()
    error_sample = json.loads(
        (DATA / "events-v2-response-error.api-schema-example.json").read_text()
    )
    assert unrecognized == error_sample
    assert pd.incidents == {}
    assert [e.status for e in pd.events] == [400] * 5


async def test_change_events(pd: FakePagerDuty, http: aiohttp.ClientSession) -> None:
    change = {
        "routing_key": ROUTING_KEY,
        "payload": {"summary": "deploy api v1.2.3", "source": "x"},
    }
    async with http.post(pd.url + "/v2/change/enqueue", json=change) as resp:
        assert resp.status == 202
    [recorded] = pd.change_events
    assert recorded.body == change
    assert pd.events == []


async def test_429_injection(pd: FakePagerDuty, http: aiohttp.ClientSession) -> None:
    sample = json.loads((DATA / "events-v2-response-429-throttled.go-pagerduty.json").read_text())
    pd.inject(429, path_prefix="/v2/enqueue", count=2)
    for _ in range(2):
        status, body = await _enqueue(http, pd, _trigger("storm"))
        assert status == 429
        assert body == sample
    assert pd.incidents == {}  # faulted calls change nothing
    assert (await _enqueue(http, pd, _trigger("storm")))[0] == 202
    assert [e.status for e in pd.events] == [429, 429, 202]

    pd.inject(500, count=None)
    async with http.get(pd.url + "/incidents", headers=AUTH) as resp:
        assert resp.status == 500
    pd.clear_faults()
    async with http.get(pd.url + "/incidents", headers=AUTH) as resp:
        assert resp.status == 200


async def test_rest_api(pd: FakePagerDuty, http: aiohttp.ClientSession) -> None:
    await _enqueue(http, pd, _trigger("a"))
    await _enqueue(http, pd, _trigger("b"))
    incident = pd.incident_by_dedup("a")
    assert incident is not None
    url = f"{pd.url}/incidents/{incident.id}"

    async with http.get(url) as resp:
        assert resp.status == 401
        assert set((await resp.json())["error"]) == {"message", "code"}
    async with http.get(url, headers={"Authorization": "Token token=wrong"}) as resp:
        assert resp.status == 401
    async with http.get(url, headers=AUTH) as resp:
        assert resp.status == 200
        got = (await resp.json())["incident"]
    assert got["id"] == incident.id
    assert got["status"] == "triggered"
    assert got["incident_key"] == "a"
    assert got["service"]["id"] == "PABC123"
    async with http.get(pd.url + "/incidents/QNOPE", headers=AUTH) as resp:
        assert resp.status == 404

    ack = {"incident": {"type": "incident_reference", "status": "acknowledged"}}
    no_from = {"Authorization": AUTH["Authorization"]}
    async with http.put(url, json=ack, headers=no_from) as resp:
        assert resp.status == 400
        assert "error" in await resp.json()
    async with http.put(url, json=ack) as resp:
        assert resp.status == 401
    async with http.put(url, json={"incident": {"status": "snoozed"}}, headers=AUTH) as resp:
        assert resp.status == 400
    async with http.put(url, json=ack, headers=AUTH) as resp:
        assert resp.status == 200
        assert (await resp.json())["incident"]["status"] == "acknowledged"
    assert incident.status == "acknowledged"
    assert incident.last_status_change_by == "bob@dhanam.dev"

    query = [("statuses[]", "triggered"), ("statuses[]", "acknowledged")]
    async with http.get(pd.url + "/incidents", params=query, headers=AUTH) as resp:
        assert len((await resp.json())["incidents"]) == 2
    async with http.get(
        pd.url + "/incidents", params={"statuses[]": "acknowledged"}, headers=AUTH
    ) as resp:
        assert [i["id"] for i in (await resp.json())["incidents"]] == [incident.id]
    async with http.get(pd.url + "/incidents", params={"incident_key": "b"}, headers=AUTH) as resp:
        assert [i["incident_key"] for i in (await resp.json())["incidents"]] == ["b"]

    note = {"note": {"content": "Rolled back api to v1.2.2"}}
    async with http.post(url + "/notes", json=note, headers=AUTH) as resp:
        assert resp.status == 201
        assert (await resp.json())["note"]["content"] == "Rolled back api to v1.2.2"
    assert incident.notes[-1]["content"] == "Rolled back api to v1.2.2"

    resolve = {"incident": {"type": "incident_reference", "status": "resolved"}}
    async with http.put(url, json=resolve, headers=AUTH) as resp:
        assert resp.status == 200
    async with http.put(url, json=ack, headers=AUTH) as resp:
        assert resp.status == 400  # a resolved incident cannot be acknowledged


def _verify(body: bytes, header: str, secret: str) -> bool:
    """PagerDuty's v3 scheme: any ``v1=<hex HMAC-SHA256(raw body)>`` in the header."""
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return any(
        hmac.compare_digest(part.strip().removeprefix("v1="), expected)
        for part in header.split(",")
        if part.strip().startswith("v1=")
    )


@pytest.mark.parametrize("name", ["triggered", "acknowledged", "resolved", "annotated"])
def test_signature_algorithm_matches_real_pagerduty_webhooks(name: str) -> None:
    secret = (DATA / "webhook-v3.aldaviva-real.secret.txt").read_text().strip()
    body = (DATA / f"webhook-v3-incident.{name}.aldaviva-real.body.json").read_bytes()
    header = (DATA / f"webhook-v3-incident.{name}.aldaviva-real.signature.txt").read_text().strip()
    assert _verify(body, header, secret)
    assert not _verify(body + b" ", header, secret)


async def test_send_webhook_is_signed_and_shaped_like_pagerduty(
    pd: FakePagerDuty, http: aiohttp.ClientSession
) -> None:
    secret = "whsec-sandbox"
    received: list[tuple[bytes, dict[str, str]]] = []

    async def receiver(request: web.Request) -> web.Response:
        received.append((await request.read(), dict(request.headers)))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks/pagerduty", receiver)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    target = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks/pagerduty"
    try:
        await _enqueue(http, pd, _trigger("api-5xx"))
        incident = pd.incident_by_dedup("api-5xx")
        assert incident is not None
        pd.set_status(incident.id, "acknowledged", by="carol@dhanam.dev")
        status = await pd.send_webhook(target, "incident.acknowledged", incident.id, secret)
        assert status == 204
        async with http.post(
            f"{pd.url}/incidents/{incident.id}/notes",
            json={"note": {"content": "looking"}},
            headers=AUTH,
        ):
            pass
        await pd.send_webhook(target, "incident.annotated", incident.id, secret)
    finally:
        await runner.cleanup()

    real = json.loads(
        (DATA / "webhook-v3-incident.acknowledged.aldaviva-real.body.json").read_text()
    )
    body, headers = received[0]
    assert _verify(body, headers["X-PagerDuty-Signature"], secret)
    assert not _verify(body, headers["X-PagerDuty-Signature"], "other-secret")
    envelope = json.loads(body)
    assert list(envelope) == ["event"]
    assert list(envelope["event"]) == list(real["event"])
    assert list(envelope["event"]["data"]) == list(real["event"]["data"])
    assert set(envelope["event"]["agent"]) == set(real["event"]["agent"])
    event = envelope["event"]
    assert event["event_type"] == "incident.acknowledged"
    assert event["resource_type"] == "incident"
    assert len(event["id"]) == len(real["event"]["id"])
    assert event["occurred_at"].endswith("Z")
    assert event["data"]["id"] == incident.id
    assert event["data"]["status"] == "acknowledged"
    assert event["data"]["incident_key"] == "api-5xx"
    assert event["agent"]["summary"] == "carol@dhanam.dev"
    assert body == json.dumps(envelope, separators=(",", ":")).encode()  # compact, like PD

    annotated_real = json.loads(
        (DATA / "webhook-v3-incident.annotated.aldaviva-real.body.json").read_text()
    )
    note_body, note_headers = received[1]
    assert _verify(note_body, note_headers["X-PagerDuty-Signature"], secret)
    note_event = json.loads(note_body)["event"]
    assert list(note_event["data"]) == list(annotated_real["event"]["data"])
    assert note_event["data"]["content"] == "looking"
