"""The incident's Slack side: its channel, card, checklist, topic and announcement.

Every method reads the incident as given and writes Slack only; the Redis side is the
service's. Slack errors other than the expected ones surface as ChatOpsError.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from datetime import datetime

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from commands.incidents import checklist_render, render
from commands.incidents.checklist_store import Diagnosis
from commands.incidents.models import Incident, channel_name
from core.errors import ChatOpsError
from core.text import user_ids
from integrations.deploy_history import DeployRecord

log = structlog.get_logger(__name__)

MAX_NAME_ATTEMPTS = 50


def _error(exc: SlackApiError) -> str:
    return str(exc.response.get("error", "unknown")) if exc.response else "unknown"


# The card cannot be edited again, whatever is retried.
CARD_GONE = frozenset(
    {"message_not_found", "cant_update_message", "is_archived", "channel_not_found"}
)


NAMES_KEPT = 1024  # user names remembered (a workspace's active people fit)
UNKNOWN_SECONDS = 300.0  # a name Slack would not give is asked again after this


class IncidentSlack:
    def __init__(self, client: AsyncWebClient, slash: str = "/dhanam") -> None:
        self.client = client
        self._slash = slash  # the configured slash command, for the hints on the card
        # user id -> name, for plain_text (card_header); at most NAMES_KEPT, oldest out first.
        self._names: OrderedDict[str, str] = OrderedDict()
        # user id -> when a failed lookup may be tried again (a made-up mention in a title
        # must not cost a users.info call on every card refresh).
        self._unknown: OrderedDict[str, float] = OrderedDict()

    async def create_channel(self, title: str, started: datetime) -> tuple[str, str]:
        """A new public channel ``inc-YYYYMMDD-<slug>``, suffixed while the name is taken."""
        for attempt in range(1, MAX_NAME_ATTEMPTS + 1):
            name = channel_name(title, started, attempt)
            try:
                response = await self.client.conversations_create(name=name, is_private=False)
            except SlackApiError as exc:
                if _error(exc) == "name_taken":
                    continue
                raise ChatOpsError(
                    f"Slack refused to create the incident channel #{name} ({_error(exc)}) — "
                    "nothing was declared."
                ) from exc
            return str(response["channel"]["id"]), name
        raise ChatOpsError(
            f"every channel name from #{channel_name(title, started)} to "
            f"-{MAX_NAME_ATTEMPTS} is taken — nothing was declared; try a different title."
        )

    async def invite(self, channel: str, users: list[str]) -> None:
        wanted = sorted({u for u in users if u})
        if not wanted:
            return
        try:
            await self.client.conversations_invite(channel=channel, users=",".join(wanted))
        except SlackApiError as exc:
            if _error(exc) != "already_in_channel":
                log.warning("incident.invite_failed", channel=channel, error=_error(exc))

    async def names(self, text: str, *users: str) -> dict[str, str]:
        """The names (display name, else real name) of the users ``text`` mentions and of
        ``users``, from users.info and kept for the process's life; a user whose name cannot be
        read is left out (the renderers then let Slack show the mention)."""
        found: dict[str, str] = {}
        for user in dict.fromkeys([*user_ids(text), *(u for u in users if u)]):
            if user not in self._names:
                if self._unknown.get(user, 0.0) > time.monotonic():
                    continue
                try:
                    response = await self.client.users_info(user=user)
                except SlackApiError as exc:
                    log.info("incident.user_name_unknown", user=user, error=_error(exc))
                    self._forget(user)
                    continue
                except (OSError, TimeoutError) as exc:  # no name is no reason to fail the card
                    log.info("incident.user_name_unknown", user=user, error=type(exc).__name__)
                    self._forget(user)
                    continue
                info = response.get("user") or {}
                profile = info.get("profile") or {}
                name = (
                    profile.get("display_name")
                    or profile.get("real_name")
                    or info.get("real_name")
                    or info.get("name")
                )
                if not name:
                    self._forget(user)
                    continue
                self._names[user] = str(name)
                while len(self._names) > NAMES_KEPT:
                    self._names.popitem(last=False)
            found[user] = self._names[user]
        return found

    def _forget(self, user: str) -> None:
        """A lookup that failed: not tried again for UNKNOWN_SECONDS (bounded too)."""
        self._unknown[user] = time.monotonic() + UNKNOWN_SECONDS
        self._unknown.move_to_end(user)
        while len(self._unknown) > NAMES_KEPT:
            self._unknown.popitem(last=False)

    async def set_topic(self, incident: Incident) -> None:
        try:
            await self.client.conversations_setTopic(
                channel=incident.channel,
                topic=render.topic(incident, await self.names(incident.title, incident.commander)),
            )
        except SlackApiError as exc:
            log.warning("incident.topic_failed", channel=incident.channel, error=_error(exc))

    async def post_card(
        self, incident: Incident, deploys: list[DeployRecord], now: datetime
    ) -> str:
        response = await self.client.chat_postMessage(
            channel=incident.channel,
            text=render.card_text(incident),
            blocks=render.card_blocks(
                incident, deploys, now, await self.names(incident.title), self._slash
            ),
            unfurl_links=False,
        )
        ts = str(response["ts"])
        try:
            await self.client.pins_add(channel=incident.channel, timestamp=ts)
        except SlackApiError as exc:
            log.warning("incident.pin_failed", channel=incident.channel, error=_error(exc))
        return ts

    async def update_card(
        self,
        incident: Incident,
        deploys: list[DeployRecord],
        now: datetime,
        *,
        strict: bool = False,
    ) -> None:
        """Edit the pinned card. Failures are logged; with ``strict`` (a caller that retries,
        the outbox) one a retry may fix (429, 5xx, network) is raised instead — a deleted card
        or an archived channel is final either way."""
        if not incident.card_ts:
            return
        try:
            await self.client.chat_update(
                channel=incident.channel,
                ts=incident.card_ts,
                text=render.card_text(incident),
                blocks=render.card_blocks(
                    incident, deploys, now, await self.names(incident.title), self._slash
                ),
            )
        except SlackApiError as exc:
            if strict and _error(exc) not in CARD_GONE:
                raise
            log.warning("incident.card_update_failed", incident=incident.id, error=_error(exc))

    async def post_checklist(self, incident: Incident, diagnosis: Diagnosis | None) -> str:
        response = await self.client.chat_postMessage(
            channel=incident.channel,
            text=checklist_render.checklist_text(incident),
            blocks=checklist_render.checklist_blocks(incident, diagnosis),
        )
        return str(response["ts"])

    async def update_checklist(self, incident: Incident, diagnosis: Diagnosis | None) -> None:
        if not incident.checklist_ts:
            return
        try:
            await self.client.chat_update(
                channel=incident.channel,
                ts=incident.checklist_ts,
                text=checklist_render.checklist_text(incident),
                blocks=checklist_render.checklist_blocks(incident, diagnosis),
            )
        except SlackApiError as exc:
            log.warning("incident.checklist_failed", incident=incident.id, error=_error(exc))

    async def announce(self, incident: Incident, channel: str, now: datetime) -> str:
        response = await self.client.chat_postMessage(
            channel=channel, text=render.announcement(incident, now), unfurl_links=False
        )
        return str(response["ts"])

    async def edit_announcement(self, incident: Incident, now: datetime) -> None:
        if not incident.announce_ts:
            return
        try:
            await self.client.chat_update(
                channel=incident.announce_channel,
                ts=incident.announce_ts,
                text=render.announcement(incident, now),
            )
        except SlackApiError as exc:
            log.warning("incident.announce_edit_failed", incident=incident.id, error=_error(exc))

    async def say(self, channel: str, text: str, thread_ts: str | None = None) -> str:
        response = await self.client.chat_postMessage(
            channel=channel, text=text, thread_ts=thread_ts, unfurl_links=False
        )
        return str(response["ts"])
