"""Scenario: incidents and PagerDuty — retries while it is down, webhooks (signed, real
samples, replays), reminders, the alarm's Declare button, deploys as change events."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import DEPS
from bot.wiring import Overrides
from commands.alarms.store import AlarmSettings
from commands.incidents.pager import IncidentTimings
from core.clock import ManualClock
from core.errors import StoreUnavailableError
from core.settings import LogFormat
from integrations.slack.outbox import OutboxItem
from sandbox.slack_emulator import SANDBOX_BOT_TOKEN
from sandbox.world import SANDBOX_PD_WEBHOOK_SECRET, Button, SandboxWorld
from tests.scenario.incident_helpers import card_text, eventually, incident_of, only_channel

DATA = Path(__file__).resolve().parents[1] / "data" / "pagerduty"
REAL_SECRET = (DATA / "webhook-v3.aldaviva-real.secret.txt").read_text().strip()
FAST = IncidentTimings(
    tick=timedelta(seconds=0.1),
    retry_base=timedelta(seconds=0.3),
    retry_max=timedelta(seconds=0.5),
    lease=timedelta(seconds=2),
)


@pytest.fixture
async def fast(redis_url: str) -> AsyncIterator[SandboxWorld]:
    """The bot with its background loops on and quick PagerDuty retries; the real samples'
    secret configured next to the sandbox's (a rotation)."""
    sandbox = SandboxWorld(
        redis_url=redis_url,
        aws=False,
        log_format=LogFormat.JSON,
        overrides=Overrides(incidents=FAST),
        pagerduty_webhook_secret=f"{SANDBOX_PD_WEBHOOK_SECRET}, {REAL_SECRET}",
    )
    await sandbox.start()
    try:
        yield sandbox
    finally:
        await sandbox.stop()


async def post_webhook(world: SandboxWorld, body: bytes, signature: str) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", "X-PagerDuty-Signature": signature}
    reply = await world.post("/webhooks/pagerduty", body.decode(), headers)
    return reply.status, reply.body if isinstance(reply.body, dict) else {}


def signed(body: bytes, secret: str = SANDBOX_PD_WEBHOOK_SECRET) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def test_pagerduty_down_then_up_pages_exactly_once(fast: SandboxWorld) -> None:
    fake = fast.pagerduty
    fake.inject(500, path_prefix="/v2/enqueue", seconds=0.8)
    await fast.slash("incident declare sev1 Database down", user="alice")
    await fast.settle()
    channel = only_channel(fast)  # declared in Slack all the same
    incident = await incident_of(fast, channel.id)
    assert "retrying in the background" in card_text(fast, incident)
    assert fake.incidents == {}

    await eventually(lambda: bool(fake.incidents))
    await eventually(lambda: "triggered" in card_text(fast, incident))
    await fast.settle()
    assert len(fake.incidents) == 1
    assert next(iter(fake.incidents.values())).dedup_key == incident.id
    failed = [e for e in fake.events if e.status == 500]
    accepted = [e for e in fake.events if e.status == 202]
    assert failed
    assert len(accepted) == 1
    assert {e.body["dedup_key"] for e in fake.events} == {incident.id}
    timeline = await fast.app[DEPS].incidents.store.timeline(incident.id)
    assert any("PagerDuty paged after" in e.text for e in timeline)


async def test_pagerduty_refusing_the_event_is_shown_without_retries(fast: SandboxWorld) -> None:
    fast.pagerduty.inject(400, path_prefix="/v2/enqueue")
    await fast.slash("incident declare sev2 Queue stuck", user="alice")
    await fast.settle()
    incident = await incident_of(fast, only_channel(fast).id)
    assert "PagerDuty failed" in card_text(fast, incident)
    assert len(fast.pagerduty.events) == 1


async def test_acknowledgement_in_pagerduty_reaches_the_card(world: SandboxWorld) -> None:
    await world.slash("incident declare sev2 Checkout errors", user="alice")
    await world.settle()
    incident = await incident_of(world, only_channel(world).id)
    pd = world.pagerduty.incident_by_dedup(incident.id)
    assert pd is not None

    world.pagerduty.set_status(pd.id, "acknowledged", by="bob@dhanam.dev")
    assert await world.pagerduty_webhook("incident.acknowledged", pd.id) == 200
    await world.settle()
    assert "acknowledged by bob@dhanam.dev" in card_text(world, incident)

    world.pagerduty.set_status(pd.id, "resolved", by="carol@dhanam.dev")
    assert await world.pagerduty_webhook("incident.resolved", pd.id) == 200
    await world.settle()
    assert "resolved by carol@dhanam.dev" in card_text(world, incident)
    timeline = await world.app[DEPS].incidents.store.timeline(incident.id)
    texts = [e.text for e in timeline]
    assert "PagerDuty: acknowledged by bob@dhanam.dev" in texts
    assert "PagerDuty: resolved by carol@dhanam.dev" in texts


async def test_a_redelivered_webhook_is_processed_once(world: SandboxWorld) -> None:
    await world.slash("incident declare sev3 Emails delayed", user="alice")
    await world.settle()
    incident = await incident_of(world, only_channel(world).id)
    pd = world.pagerduty.incident_by_dedup(incident.id)
    assert pd is not None
    body = world.pagerduty.webhook_body("incident.escalated", pd.id)
    first = await post_webhook(world, body, signed(body))
    again = await post_webhook(world, body, signed(body))
    assert (first[0], first[1]["outcome"]) == (200, "processed")
    assert (again[0], again[1]["outcome"]) == (200, "duplicate")
    timeline = await world.app[DEPS].incidents.store.timeline(incident.id)
    assert len([e for e in timeline if e.text.startswith("PagerDuty: escalated")]) == 1


async def test_signatures_fail_closed(world: SandboxWorld) -> None:
    body = (DATA / "webhook-v3-pagey.ping.aldaviva-real.body.json").read_bytes()
    assert (await post_webhook(world, body, signed(body)))[0] == 200
    tampered = body.replace(b"Pagey", b"Pagez")
    assert (await post_webhook(world, tampered, signed(body)))[0] == 403
    assert (await post_webhook(world, body, ""))[0] == 403
    assert (await post_webhook(world, body, signed(body, "wrong-secret")))[0] == 403
    not_json = b"{not json"
    assert (await post_webhook(world, not_json, signed(not_json)))[0] == 400


async def test_no_secret_configured_accepts_nothing(redis_url: str) -> None:
    sandbox = SandboxWorld(
        redis_url=redis_url, aws=False, log_format=LogFormat.JSON, pagerduty_webhook_secret=""
    )
    await sandbox.start()
    try:
        body = (DATA / "webhook-v3-pagey.ping.aldaviva-real.body.json").read_bytes()
        status, answer = await post_webhook(sandbox, body, signed(body, ""))
        assert status == 403
        assert answer["error"] == "forbidden"
    finally:
        await sandbox.stop()


async def test_real_signed_samples_post_and_edit_one_oncall_message(fast: SandboxWorld) -> None:
    for name in ("pagey.ping", "incident.triggered", "incident.acknowledged"):
        body = (DATA / f"webhook-v3-{name}.aldaviva-real.body.json").read_bytes()
        signature = (DATA / f"webhook-v3-{name}.aldaviva-real.signature.txt").read_text().strip()
        status, _ = await post_webhook(fast, body, signature)
        assert status == 200, name
        await fast.settle()
    top = [m for m in fast.slack.messages("C0ONCALL") if not m.is_reply]
    assert len(top) == 1  # triggered posted it, acknowledged edited it
    assert "#37 Test" in top[0].text
    assert "*acknowledged* by Ben" in top[0].text
    for name in ("incident.annotated", "incident.resolved"):
        body = (DATA / f"webhook-v3-{name}.aldaviva-real.body.json").read_bytes()
        signature = (DATA / f"webhook-v3-{name}.aldaviva-real.signature.txt").read_text().strip()
        assert (await post_webhook(fast, body, signature))[0] == 200
        await fast.settle()
    messages = fast.slack.messages("C0ONCALL")
    assert "*resolved*" in next(m for m in messages if not m.is_reply).text
    replies = [m for m in messages if m.is_reply]
    assert len(replies) == 1
    assert "Resolution Note: I'm resolving it" in replies[0].text
    body = (DATA / "webhook-v3-incident.resolved.aldaviva-real.body.json").read_bytes()
    tampered = body.replace(b'"resolved"', b'"triggered"', 1)
    signature = (DATA / "webhook-v3-incident.resolved.aldaviva-real.signature.txt").read_text()
    assert (await post_webhook(fast, tampered, signature.strip()))[0] == 403


async def test_quiet_sev2_nudges_the_commander_once_per_interval(redis_url: str) -> None:
    clock = ManualClock()
    sandbox = SandboxWorld(
        redis_url=redis_url,
        aws=False,
        log_format=LogFormat.JSON,
        overrides=Overrides(clock=clock, incidents=FAST),
    )
    await sandbox.start()
    try:
        await sandbox.slash("incident declare sev2 Search degraded", user="alice")
        await sandbox.settle()
        channel = only_channel(sandbox).id

        def nudges() -> int:
            return sum("no update for" in m.text for m in sandbox.slack.messages(channel))

        clock.advance(1790)
        await sandbox.settle()
        assert nudges() == 0
        clock.advance(20)
        await eventually(lambda: nudges() == 1)
        clock.advance(600)
        await sandbox.settle(quiet=0.4)
        assert nudges() == 1  # at most one per interval
        assert "<@U0ALICE> no update for 30 min" in sandbox.slack.messages(channel)[-1].text
        clock.advance(1200)
        await eventually(lambda: nudges() == 2)
        await sandbox.slash("incident update found it", user="alice", channel=channel)
        clock.advance(1700)
        await sandbox.settle(quiet=0.4)
        assert nudges() == 2  # the update reset the clock
    finally:
        await sandbox.stop()


async def test_declare_incident_button_on_an_alarm(world: SandboxWorld) -> None:
    client = AsyncWebClient(token=SANDBOX_BOT_TOKEN, base_url=world.slack.api_url)
    value = json.dumps(
        {
            "title": "dhanam-api-high-error-rate in ALARM",
            "severity": "sev2",
            "alarm": "dhanam-api-high-error-rate",
        }
    )
    button = {
        "type": "button",
        "action_id": "alarm_declare_incident",
        "text": {"type": "plain_text", "text": "Declare incident"},
        "value": value,
    }
    posted = await client.chat_postMessage(
        channel="C0ALERTS",
        text="alarm",
        blocks=[{"type": "actions", "block_id": "alarm_actions", "elements": [button]}],
    )
    alarm_message = next(m for m in world.slack.messages("C0ALERTS") if m.ts == posted["ts"])
    clicked = Button("Declare incident", "alarm_declare_incident", "alarm_actions", value)
    assert (await world.click(alarm_message, clicked, user="carol")).status == 200
    await world.settle()
    channel = only_channel(world)
    assert channel.name.endswith("dhanam-api-high-error-rate-in-alarm")
    incident = await incident_of(world, channel.id)
    assert incident.commander == "U0CAROL"
    assert incident.alarm == "dhanam-api-high-error-rate"
    assert "declared from alarm" in card_text(world, incident)
    assert f"<#{channel.id}>" in world.slack.ephemerals("U0CAROL")[-1].text


async def test_deploys_are_change_events_and_show_on_open_incidents(
    aws_bot: SandboxWorld,
) -> None:
    await aws_bot.slash("incident declare sev2 Elevated latency", user="alice")
    await aws_bot.settle()
    incident = await incident_of(aws_bot, only_channel(aws_bot).id)
    await aws_bot.slash("deploy api staging v1.3.0", user="dave", channel="C0OPS")
    await aws_bot.settle()
    changes = aws_bot.pagerduty.change_events
    assert len(changes) == 1
    assert changes[0].status == 202
    payload = changes[0].body["payload"]
    assert "api" in payload["summary"]
    assert "staging" in payload["summary"]
    assert payload["custom_details"]["requested_by"] == "U0DAVE"
    assert payload["custom_details"]["tag"] == "v1.3.0"
    assert "deploy *api* staging → `v1.3.0` by <@U0DAVE>" in card_text(aws_bot, incident)


# -- Slack failures after the event was recorded (issue 12, point 6) -------------------------
def _real(name: str) -> bytes:
    return (DATA / f"webhook-v3-{name}.aldaviva-real.body.json").read_bytes()


def _oncall_posts(world: SandboxWorld) -> list[str]:
    return [m.text for m in world.slack.messages("C0ONCALL") if not m.is_reply]


async def test_slack_down_after_recording_is_2xx_and_the_post_is_retried(
    world: SandboxWorld,
) -> None:
    # Every attempt of the client's own retries fails: the post fails after the event is
    # recorded (the delivery claimed); the outbox keeps the update and tries again.
    world.slack.inject(500, method="chat.postMessage", count=3)
    body = _real("incident.triggered")
    status, answer = await post_webhook(world, body, signed(body))
    assert (status, answer["outcome"]) == (200, "processed")
    assert _oncall_posts(world) == []
    again = await post_webhook(world, body, signed(body))
    assert (again[0], again[1]["outcome"]) == (200, "duplicate")
    await eventually(lambda: len(_oncall_posts(world)) == 1)
    await world.settle()
    assert len(_oncall_posts(world)) == 1  # posted once, by the outbox's retry


async def test_a_deleted_pagerduty_message_is_posted_anew(world: SandboxWorld) -> None:
    triggered = _real("incident.triggered")
    assert (await post_webhook(world, triggered, signed(triggered)))[0] == 200
    await world.settle()
    [message] = [m for m in world.slack.messages("C0ONCALL") if not m.is_reply]
    world.slack.world.delete_message(message)
    acknowledged = _real("incident.acknowledged")
    status, answer = await post_webhook(world, acknowledged, signed(acknowledged))
    assert (status, answer["outcome"]) == (200, "processed")
    await world.settle()
    [again] = [m for m in world.slack.messages("C0ONCALL") if not m.is_reply]
    assert again.ts != message.ts
    stored = await world.app[DEPS].incidents.store.pd_message("Q2CKYRLH85UNN4")
    assert stored == ("C0ONCALL", again.ts)


async def test_an_archived_incident_channel_is_not_a_500(
    world: SandboxWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.slash("incident declare sev2 Checkout errors", user="alice")
    await world.settle()
    incident = await incident_of(world, only_channel(world).id)
    pd = world.pagerduty.incident_by_dedup(incident.id)
    assert pd is not None
    slack = world.app[DEPS].incidents.slack
    said: list[str] = []

    async def archived(channel: str, text: str, thread_ts: str | None = None) -> str:
        said.append(channel)
        raise SlackApiError("is_archived", {"ok": False, "error": "is_archived"})

    monkeypatch.setattr(slack, "say", archived)
    pd.notes.append(
        {"id": "P0NOTE9999", "content": "DB failover started", "created_at": "2026-11-26T10:00:00Z"}
    )
    body = world.pagerduty.webhook_body("incident.annotated", pd.id)
    status, answer = await post_webhook(world, body, signed(body))
    assert (status, answer["outcome"]) == (200, "processed")
    await world.settle()
    assert said == [incident.channel]  # tried once: is_archived is final, dropped
    outbox = world.app[DEPS].outbox
    assert await outbox.pending(incident.channel) == []
    assert await world.app[DEPS].redis.llen(outbox.queue_keys(incident.channel)[2]) == 0
    timeline = await world.app[DEPS].incidents.store.timeline(incident.id)
    assert any("PagerDuty note" in e.text for e in timeline)  # recorded all the same


async def test_a_slack_update_not_yet_written_survives_a_restart(redis_url: str) -> None:
    """Recorded, answered 2xx, Slack down: the update waits in Redis (the outbox), not in the
    process. The bot stops; the next one to start writes it."""
    quick = Overrides(alarms=AlarmSettings(reminder=timedelta(seconds=2)))  # 0.5 s recovery
    first = SandboxWorld(redis_url=redis_url, aws=False, overrides=quick)
    await first.start()
    try:
        first.slack.inject(500, method="chat.postMessage", count=None)  # down throughout
        body = _real("incident.triggered")
        status, answer = await post_webhook(first, body, signed(body))
        assert (status, answer["outcome"]) == (200, "processed")
        outbox = first.app[DEPS].outbox

        async def held() -> int:
            """Pending or being written, read at one instant (MULTI: the drain moves it)."""
            queue, _, processing = outbox.queue_keys("C0ONCALL")
            pipe = first.app[DEPS].redis.pipeline(transaction=True)
            pipe.llen(queue)
            pipe.llen(processing)
            return sum(int(n) for n in await pipe.execute())

        assert await held() == 1
    finally:
        await first.stop()
    assert _oncall_posts(first) == []
    second = SandboxWorld(redis_url=redis_url, aws=False, overrides=quick)
    await second.start()
    try:
        await eventually(lambda: len(_oncall_posts(second)) == 1, within=10)
        [posted] = _oncall_posts(second)
        assert "PagerDuty" in posted
        assert "triggered" in posted
    finally:
        await second.stop()


async def test_a_claim_whose_recording_never_finished_lets_the_retry_through(
    world: SandboxWorld,
) -> None:
    """The delivery was claimed, then the replica died (or Redis went away before the claim
    could be released) with nothing recorded: a redelivery meanwhile is told to come back
    (503), never "duplicate", and once the short claim lapses the retry is processed."""
    deps = world.app[DEPS]
    body = _real("incident.triggered")
    event_id = json.loads(body)["event"]["id"]
    key = f"dhanam:pd:event:{event_id}"
    await deps.redis.set(key, "claimed", ex=60)  # what a dead replica's claim looks like
    status, _ = await post_webhook(world, body, signed(body))
    assert status == 503  # in progress elsewhere: retry later, not "duplicate"
    assert _oncall_posts(world) == []
    await deps.redis.delete(key)  # the claim lapses (60 s)
    status, answer = await post_webhook(world, body, signed(body))
    assert (status, answer["outcome"]) == (200, "processed")
    await eventually(lambda: len(_oncall_posts(world)) == 1)
    assert await deps.redis.get(key) == "done"
    again = await post_webhook(world, body, signed(body))
    assert (again[0], again[1]["outcome"]) == (200, "duplicate")


async def test_a_card_edit_slack_refuses_for_now_is_retried_not_lost(world: SandboxWorld) -> None:
    """Slack answers 500 (past the client's own retries) to the card edit of a recorded
    acknowledgement: the outbox keeps the update and the card shows it in the end."""
    await world.slash("incident declare sev2 Checkout errors", user="alice")
    await world.settle()
    incident = await incident_of(world, only_channel(world).id)
    pd = world.pagerduty.incident_by_dedup(incident.id)
    assert pd is not None
    world.pagerduty.set_status(pd.id, "acknowledged", by="bob@dhanam.dev")
    world.slack.inject(500, method="chat.update", count=3)
    assert await world.pagerduty_webhook("incident.acknowledged", pd.id) == 200
    await eventually(lambda: "acknowledged by bob@dhanam.dev" in card_text(world, incident))


async def test_a_redelivery_after_a_half_way_failure_adds_one_line_and_one_note(
    world: SandboxWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recording failed after the timeline line was written (Redis went away before the
    outbox took the update): 503, PagerDuty redelivers, and the line and the note appear once."""
    await world.slash("incident declare sev2 Checkout errors", user="alice")
    await world.settle()
    incident = await incident_of(world, only_channel(world).id)
    pd = world.pagerduty.incident_by_dedup(incident.id)
    assert pd is not None
    pd.notes.append(
        {"id": "P0NOTE0001", "content": "Failing over the DB", "created_at": "2026-11-26T10:00:00Z"}
    )
    outbox = world.app[DEPS].outbox
    enqueue = outbox.enqueue
    failures = [StoreUnavailableError("Redis went away")]

    async def once_unavailable(channel: str, item: OutboxItem) -> None:
        if failures:
            raise failures.pop()
        await enqueue(channel, item)

    monkeypatch.setattr(outbox, "enqueue", once_unavailable)
    body = world.pagerduty.webhook_body("incident.annotated", pd.id)
    assert (await post_webhook(world, body, signed(body)))[0] == 503
    world.slack.inject(500, method="chat.update", count=3)  # the card edit fails once too
    start = len(world.slack.calls)
    assert (await post_webhook(world, body, signed(body)))[0] == 200

    def notes() -> list[str]:
        return [m.ts for m in world.slack.messages(incident.channel) if "over the DB" in m.text]

    def edited() -> list[int]:
        return [c.status for c in world.slack.calls[start:] if c.method == "chat.update"]

    await eventually(lambda: edited()[:1] == [500] and edited()[-1:] == [200])
    await world.settle()
    timeline = await world.app[DEPS].incidents.store.timeline(incident.id)
    assert len([e for e in timeline if "Failing over the DB" in e.text]) == 1
    assert len(notes()) == 1  # posted once, though the item was retried
