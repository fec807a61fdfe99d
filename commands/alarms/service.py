"""CloudWatch alarms in Slack: route, thread, coalesce storms into digests, remind.

`receive` (from the SNS webhook) stores the newest state of an alarm and queues an ALARM item
for it in its channel's outbox, in one Redis script (AlarmStore.intake); the outbox drainer
calls `process`, which renders the alarm's state *at that moment* — so repeated transitions
collapse to the latest one, and what is shown is always the newest by StateChangeTime. The first
ALARM posts one root message; later transitions edit it and reply in its thread. An ALARM → OK
for an alarm whose firing the bot never saw is posted once as recovered. When more than
`storm_threshold` alarms change within `storm_window` in one channel, new alarms join one digest
message instead, edited as they change. SNS notifications that are not alarms are posted to
`alerts_channel` as plain notices (`notify`).

Long: an alarm is shown by its own message, a digest or a repost after a deletion, and every
outbox kind moves it between them; those rules read as one (rendering and storage are already
alarms/render.py and alarms/store.py).
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from slack_sdk.errors import SlackApiError

from commands.alarms.environment import alarm_target
from commands.alarms.render import (
    NOTICE_BODY_MAX,
    NOTICE_SUBJECT_MAX,
    AlarmView,
    RollbackOffer,
    digest_message,
    notice_message,
    reminder_text,
    root_message,
    transition_text,
)
from commands.alarms.store import (
    AlarmRecord,
    AlarmSettings,
    AlarmStore,
    Intake,
    PagerDutyLink,
)
from core.clock import Clock
from core.config import Config
from core.loops import run_every, run_iteration
from integrations.aws.models import short
from integrations.cloudwatch_alarms import AlarmNotification, AlarmState
from integrations.deploy_history import DeployHistory
from integrations.pagerduty_webhooks import PdEvent
from integrations.slack.outbox import ItemKind, Leases, Outbox, OutboxItem, PacedSlack

log = structlog.get_logger(__name__)

OWN = "alarm"
DIGEST = "digest"
# Slack's answers when the message that shows an alarm (its root or digest) was deleted.
ROOT_GONE = frozenset({"message_not_found", "invalid_thread_ts", "thread_not_found"})


def _root_gone(exc: SlackApiError) -> bool:
    response: Any = exc.response
    try:
        return str(response.get("error") or "") in ROOT_GONE
    except (AttributeError, TypeError):
        return False


def _at(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms is not None else None


def missed(record: AlarmRecord) -> bool:
    """ALARM → OK, and the bot never saw that ALARM (down, or a new subscription): post it
    once as recovered. INSUFFICIENT_DATA → OK stays quiet."""
    seen = record.fired_ms is not None and (
        record.fired_unseen or record.shown_state is AlarmState.ALARM
    )
    return record.state is AlarmState.OK and record.alarm.old_state is AlarmState.ALARM and not seen


class AlarmService:
    # The outbox item kinds `process` writes (registered by the wiring).
    KINDS = (ItemKind.ALARM, ItemKind.DIGEST, ItemKind.REMINDER, ItemKind.LINK, ItemKind.NOTICE)

    def __init__(
        self,
        *,
        config: Config,
        store: AlarmStore,
        outbox: Outbox,
        history: DeployHistory,
        leases: Leases,
        clock: Clock,
        settings: AlarmSettings,
        bake: timedelta,
    ) -> None:
        self._config = config
        self._store = store
        self._outbox = outbox
        self._history = history
        self._leases = leases
        self._clock = clock
        self.settings = settings
        self._bake = bake

    def channel_for(self, alarm: str) -> str:
        service = self._config.service_for_alarm(alarm)
        channel = self._config.services[service].channel if service else None
        return channel or self._config.slack.alerts_channel

    # -- intake ------------------------------------------------------------------------------
    async def receive(self, alarm: AlarmNotification, message_id: str) -> Intake:
        """Store and queue one delivery (one Redis round trip): QUEUED, STALE when an older
        state arrived late, DUPLICATE when this delivery was processed already."""
        channel = self.channel_for(alarm.name)
        outcome, target = await self._store.intake(
            alarm,
            channel=channel,
            message_id=message_id,
            reminder_due=self._clock.now() + self.settings.reminder,
            item=OutboxItem(ItemKind.ALARM, alarm.name),
            outbox=self._outbox,
        )
        if outcome is Intake.QUEUED:
            self._outbox.kick(target)
            log.info("alarm.received", alarm=alarm.name, state=alarm.new_state, channel=target)
        else:
            log.info("alarm.not_queued", alarm=alarm.name, outcome=outcome.name.lower())
        return outcome

    async def notify(self, subject: str, body: str, message_id: str) -> bool:
        """A verified SNS notification that is not an alarm: posted to `alerts_channel` as a
        plain notice (clipped here, made inert when rendered). False: a duplicate delivery."""
        channel = self._config.slack.alerts_channel
        item = OutboxItem(
            ItemKind.NOTICE,
            message_id,
            (("body", body[:NOTICE_BODY_MAX]), ("subject", subject[:NOTICE_SUBJECT_MAX])),
        )
        queued = await self._store.notice(
            channel=channel, message_id=message_id, item=item, outbox=self._outbox
        )
        if queued:
            self._outbox.kick(channel)
        return queued

    # -- the outbox's processor --------------------------------------------------------------
    async def process(self, channel: str, item: OutboxItem, slack: PacedSlack) -> None:
        match item.kind:
            case ItemKind.ALARM:
                await self._alarm(channel, item.ref, slack)
            case ItemKind.DIGEST:
                await self._digest(channel, item.ref, slack)
            case ItemKind.REMINDER:
                await self._reminder(item.ref, slack)
            case ItemKind.LINK:
                await self._refresh_root(item.ref, slack)
            case ItemKind.NOTICE:
                text, blocks = notice_message(item.get("subject"), item.get("body"))
                await slack.post(channel, text, blocks)

    async def view(self, record: AlarmRecord) -> AlarmView:
        service = self._config.service_for_alarm(record.name)
        offer = None
        if record.state is AlarmState.ALARM:
            offer = await self._rollback_offer(record.alarm)
        return AlarmView(
            alarm=record.alarm,
            service=service,
            fired_at=_at(record.fired_ms),
            rollback=offer,
            pagerduty=record.pagerduty,
            unseen_fire=missed(record),
        )

    async def pagerduty_hook(self, event: PdEvent) -> None:
        """For PagerDuty's incidents that are not the bot's: link the alarm the title names."""
        link = PagerDutyLink(
            incident_id=event.incident_id, status=event.status, url=event.html_url, by=event.agent
        )
        await self.link_pagerduty(event.title, link)

    async def link_pagerduty(self, title: str, link: PagerDutyLink) -> str | None:
        """Tie a PagerDuty incident to the alarm its title names (CloudWatch's PagerDuty
        integration titles it `ALARM: "<name>" in <region>`) and refresh the alarm's message.
        Returns the alarm's name, or None when the title names no alarm the bot has seen."""
        candidates: list[str] = re.findall(r'"([^"]+)"', title)
        candidates += [
            name for svc in self._config.services.values() for name in svc.alarms if name in title
        ]
        for name in dict.fromkeys(candidates):
            if await self._store.link_pagerduty(name, link):
                record = await self._store.get(name)
                target = (record.root_channel if record else None) or self.channel_for(name)
                await self._outbox.enqueue(target, OutboxItem(ItemKind.LINK, name))
                log.info("alarm.pagerduty_linked", alarm=name, incident=link.incident_id)
                return name
        return None

    async def _rollback_offer(self, alarm: AlarmNotification) -> RollbackOffer | None:
        """Offer to undo a deploy that finished within the bake window, in the environment the
        alarm watches only: never in a guessed one (commands.alarms.environment)."""
        target = alarm_target(self._config, alarm)
        if target.service is None or target.env is None:
            log.debug("alarm.no_rollback_target", alarm=alarm.name, why=target.basis)
            return None
        record = await self._history.deployed_within(target.service, target.env, self._bake)
        if record is None or not record.previous_task_definition:
            return None
        return RollbackOffer(
            service=target.service,
            env=target.env,
            to=short(record.previous_task_definition),
            deployed_at=record.at,
        )

    async def _alarm(self, channel: str, name: str, slack: PacedSlack) -> None:
        record = await self._store.get(name)
        if record is None or not record.pending:
            return
        if record.root_current(self.settings.new_thread_after):
            await self._update_root(record, channel, slack)
            return
        quiet = record.state is not AlarmState.ALARM and not record.fired_unseen
        if quiet and not missed(record):
            await self._store.mark_shown(record)  # never fired since shown: nothing to open
            return
        if record.channel and record.channel != channel:
            # Its old message was in another channel (the config moved it): a new one goes
            # where the config says now, through that channel's outbox and pacing.
            await self._outbox.enqueue(record.channel, OutboxItem(ItemKind.ALARM, name))
            return
        if await self._storm(channel):
            await self._join_digest(channel, record, slack)
            return
        view = await self.view(record)
        text, blocks = root_message(view)
        ts = await slack.post(channel, text, blocks)
        await self._store.set_root(record, channel, ts, OWN)
        await self._store.mark_shown(record)
        await self._store.note_root(channel, name, self.settings.storm_window)
        log.info("alarm.posted", alarm=name, channel=channel, ts=ts)

    async def _update_root(self, record: AlarmRecord, channel: str, slack: PacedSlack) -> None:
        """A new state of an alarm whose message still tracks it: edit that message (or its
        digest) and say what changed in its thread."""
        assert record.root_ts is not None
        root_channel = record.root_channel or channel
        if record.root_kind == DIGEST:
            await self._outbox.enqueue(root_channel, OutboxItem(ItemKind.DIGEST, record.root_ts))
            return
        view = await self.view(record)
        text, blocks = root_message(view)
        try:
            await slack.update(root_channel, record.root_ts, text, blocks)
            await slack.post(
                root_channel, transition_text(view, record.shown_state), thread_ts=record.root_ts
            )
        except SlackApiError as exc:
            if not _root_gone(exc):
                raise
            await self._repost(record, record.root_ts)
            return
        await self._store.mark_shown(record)

    async def _refresh_root(self, name: str, slack: PacedSlack) -> None:
        """Edit the alarm's own message in place (its PagerDuty link changed; no new state,
        so no thread reply). A pending state change is left to its own queued item."""
        record = await self._store.get(name)
        if record is None or record.root_ts is None or record.root_kind != OWN:
            return
        text, blocks = root_message(await self.view(record))
        try:
            await slack.update(record.root_channel or record.channel, record.root_ts, text, blocks)
        except SlackApiError as exc:
            if not _root_gone(exc):
                raise
            await self._repost(record, record.root_ts)

    async def _repost(self, record: AlarmRecord, ts: str) -> None:
        """Someone deleted the message that showed the alarm: forget it (and what it showed)
        and queue the alarm again, so a new message shows its current state."""
        if await self._store.clear_root(record.name, ts):
            log.info("alarm.message_gone", alarm=record.name, ts=ts)
            await self._outbox.enqueue(record.channel, OutboxItem(ItemKind.ALARM, record.name))

    async def _storm(self, channel: str) -> bool:
        if await self._store.open_digest(channel):
            return True
        recent = await self._store.recent_roots(channel, self.settings.storm_window)
        waiting = [i for i in await self._outbox.pending(channel) if i.kind is ItemKind.ALARM]
        return recent + len(waiting) + 1 > self.settings.storm_threshold

    async def _join_digest(self, channel: str, record: AlarmRecord, slack: PacedSlack) -> None:
        ts = await self._store.open_digest(channel)
        if ts is None:
            text, blocks = digest_message([await self.view(record)])
            ts = await slack.post(channel, text, blocks)
            await self._store.join_digest(channel, ts, record.name)
            await self._store.set_root(record, channel, ts, DIGEST)
            await self._store.mark_shown(record)
            log.info("alarm.digest_opened", channel=channel, ts=ts, alarm=record.name)
        else:
            await self._store.join_digest(channel, ts, record.name)
            await self._store.set_root(record, channel, ts, DIGEST)
            await self._outbox.enqueue(channel, OutboxItem(ItemKind.DIGEST, ts))
        await self._store.hold_digest(channel, ts, self.settings.digest_hold)
        await self._store.note_root(channel, record.name, self.settings.storm_window)

    async def _digest(self, channel: str, ts: str, slack: PacedSlack) -> None:
        # Only the members this digest still shows: an alarm that has since moved to its own
        # message (or another digest) is that message's to render and mark shown.
        records = [
            r
            for n in await self._store.digest_members(channel, ts)
            if (r := await self._store.get(n)) and r.root_kind == DIGEST and r.root_ts == ts
        ]
        if not records:
            return
        views = [
            AlarmView(
                alarm=r.alarm,
                service=self._config.service_for_alarm(r.name),
                fired_at=_at(r.fired_ms),
            )
            for r in records
        ]
        text, blocks = digest_message(views)
        try:
            await slack.update(channel, ts, text, blocks)
        except SlackApiError as exc:
            if not _root_gone(exc):
                raise
            # The digest was deleted: close it; each of its alarms gets a message anew.
            log.info("alarm.digest_gone", channel=channel, ts=ts)
            await self._store.close_digest(channel, ts)
            for record in records:
                await self._repost(record, ts)
            return
        for record in records:
            await self._store.mark_shown(record)

    async def _reminder(self, name: str, slack: PacedSlack) -> None:
        record = await self._store.get(name)
        if record is None or record.state is not AlarmState.ALARM or not record.root_ts:
            return
        fired = _at(record.fired_ms) or record.alarm.changed_at
        since = max(self._clock.now() - fired, timedelta(0))
        channel = record.root_channel or record.channel
        try:
            await slack.post(channel, reminder_text(name, since), thread_ts=record.root_ts)
        except SlackApiError as exc:
            if not _root_gone(exc):
                raise
            await self._repost(record, record.root_ts)  # a new message says it is firing

    # -- background: reminders and outbox recovery -------------------------------------------
    async def remind_once(
        self, still_mine: Callable[[], Awaitable[bool]] | None = None
    ) -> list[str]:
        """Queue every due reminder; each is queued and its next one scheduled in one step
        (never one without the other). ``still_mine`` is asked before each: the reminders
        lease is renewed as it goes, and a replica that lost it stops."""
        sent = []
        for name in await self._store.reminders_due():
            if still_mine is not None and not await still_mine():
                log.warning("alarm.reminders_lease_lost", left=name)
                break
            record = await self._store.get(name)
            if record is None or record.state is not AlarmState.ALARM:
                await self._store.cancel_reminder(name)
                continue
            channel = record.root_channel or record.channel
            queued = await self._store.remind(
                name,
                next_due=self._clock.now() + self.settings.reminder,
                channel=channel,
                item=OutboxItem(ItemKind.REMINDER, name),
                outbox=self._outbox,
            )
            if queued:
                self._outbox.kick(channel)
                sent.append(name)
        return sent

    async def run_background(self, stop: asyncio.Event) -> None:
        """Reminders (one replica at a time, the `alarms:reminders` lease) and outbox
        recovery, each its own step: a failure in one never skips the other."""
        tick = min(max(self.settings.reminder.total_seconds() / 4, 0.2), 15.0)

        lease = timedelta(seconds=tick * 2)

        async def reminders() -> None:
            token = secrets.token_hex(8)
            if await self._leases.acquire("alarms:reminders", token, lease):
                try:
                    await self.remind_once(
                        lambda: self._leases.renew("alarms:reminders", token, lease)
                    )
                finally:
                    await self._leases.release("alarms:reminders", token)

        async def iteration() -> None:
            await run_iteration("alarms.reminders", reminders)
            recover = lambda: self._outbox.recover()  # noqa: E731, PLW0108 - late-bound
            await run_iteration("alarms.outbox_recovery", recover)

        await run_every("alarms.background", tick, iteration, stop, wait_first=True)
