"""Workspace state of the Slack emulator and the param helpers its methods share."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from sandbox.slack_emulator_models import (
    BOT_USER_ID,
    BOT_USER_NAME,
    EmuChannel,
    EmulatorEvent,
    EmuMessage,
    EmuUser,
    EventKind,
)

Params = dict[str, Any]
Answer = dict[str, Any]

_NAME_OK = re.compile(r"^[a-z0-9_-]+$")
_BASE_SECONDS = 1700000000
# What an archived channel refuses with ``is_archived`` (reads still answer).
ARCHIVED_REFUSES = frozenset(
    {
        "chat.postMessage",
        "chat.update",
        "chat.delete",
        "chat.postEphemeral",
        "conversations.setTopic",
        "conversations.invite",
        "pins.add",
        "reactions.add",
    }
)


def err(code: str, **extra: Any) -> Answer:
    return {"ok": False, "error": code, **extra}


def text_param(params: Params, key: str) -> str | None:
    value = params.get(key)
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def json_param(params: Params, key: str) -> Any:
    """A structured param that form-encoded callers send as a JSON string."""
    value = params.get(key)
    if isinstance(value, str):
        if value == "":
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def flag_param(params: Params, key: str) -> bool:
    value = params.get(key)
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return bool(value)


def channel_name_error(name: str | None) -> str | None:
    """Slack's conversations.create name rules; None when the name is acceptable."""
    if not name:
        return "invalid_name_required"
    if len(name) > 80:
        return "invalid_name_maxlength"
    if not _NAME_OK.match(name):
        # Slack reports upper-case letters, spaces and other characters alike as "specials"
        return "invalid_name_specials"
    if not re.search(r"[a-z0-9]", name):
        return "invalid_name_punctuation"
    return None


class WorkspaceState:
    """Users, channels, messages and views, plus the edits every method shares."""

    def __init__(
        self,
        *,
        team_id: str,
        users: list[EmuUser],
        channels: list[EmuChannel],
        usergroups: dict[str, list[str]],
        publish: Callable[[EmulatorEvent], None],
    ) -> None:
        self.team_id = team_id
        self.publish = publish
        self.users: dict[str, EmuUser] = {u.id: u for u in users}
        self.users.setdefault(BOT_USER_ID, EmuUser(BOT_USER_ID, BOT_USER_NAME, "Dhanam", True))
        self.channels: dict[str, EmuChannel] = {c.id: c for c in channels}
        self.usergroups = {k: list(v) for k, v in usergroups.items()}
        self.history: dict[str, list[EmuMessage]] = {}
        self.ephemeral: list[EmuMessage] = []
        self.views: dict[str, dict[str, Any]] = {}
        self.published: dict[str, dict[str, Any]] = {}
        self.archived: set[str] = set()
        self._seq = 0
        self._channel_seq = 0

    # ---- fault hooks ---------------------------------------------------------------

    def archive(self, channel_id: str) -> None:
        """Archive a channel: from now on every write to it answers ``is_archived``."""
        self.archived.add(channel_id)

    def archived_refusal(self, method: str, params: Params) -> Answer | None:
        """``is_archived`` when ``method`` writes to an archived channel, else None."""
        if method not in ARCHIVED_REFUSES or not self.archived:
            return None
        ref = text_param(params, "channel")
        if ref is None:
            return None
        channel = self.channels.get(ref) or next(
            (c for c in self.channels.values() if c.name == ref.removeprefix("#")), None
        )
        if channel is not None and channel.id in self.archived:
            return err("is_archived")
        return None

    # ---- helpers -------------------------------------------------------------------

    def next_ts(self) -> str:
        """Unique, increasing, Slack-looking timestamps: 1700000000.000100, .000200…"""
        self._seq += 1
        micros = self._seq * 100
        return f"{_BASE_SECONDS + micros // 1_000_000}.{micros % 1_000_000:06d}"

    def resolve_channel(
        self, ref: str | None, *, names_and_users: bool = False
    ) -> EmuChannel | None:
        if ref is None:
            return None
        if ref in self.channels:
            return self.channels[ref]
        if not names_and_users:
            return None
        if ref in self.users:  # chat.postMessage to a user id opens the DM
            dm_id = "D" + ref[1:]
            if dm_id not in self.channels:
                self.channels[dm_id] = EmuChannel(
                    dm_id, ref, is_im=True, members=[ref, BOT_USER_ID], creator=ref
                )
            return self.channels[dm_id]
        name = ref.removeprefix("#")
        return next((c for c in self.channels.values() if c.name == name), None)

    def find_message(self, channel: str, ts: str) -> EmuMessage | None:
        for msg in self.history.get(channel, []):
            if msg.ts == ts and not msg.deleted:
                return msg
        return None

    def find_ephemeral(self, channel: str, ts: str) -> EmuMessage | None:
        return next(
            (m for m in self.ephemeral if m.channel == channel and m.ts == ts and not m.deleted),
            None,
        )

    def add_message(self, msg: EmuMessage) -> None:
        if msg.ephemeral_to is not None:
            self.ephemeral.append(msg)
            self.publish(
                EmulatorEvent(EventKind.ephemeral, msg.channel, msg.snapshot(), msg.ephemeral_to)
            )
        else:
            self.history.setdefault(msg.channel, []).append(msg)
            self.publish(EmulatorEvent(EventKind.message_posted, msg.channel, msg.snapshot()))

    def edit_message(self, msg: EmuMessage, text: str | None, blocks: Any) -> None:
        if text is not None:
            msg.text = text
        if blocks is not None:
            msg.blocks = blocks
        msg.edited += 1
        self.publish(EmulatorEvent(EventKind.message_updated, msg.channel, msg.snapshot()))

    def delete_message(self, msg: EmuMessage) -> None:
        msg.deleted = True
        self.publish(EmulatorEvent(EventKind.message_deleted, msg.channel, msg.snapshot()))

    def add_members(self, channel: EmuChannel, user_ids: list[str]) -> None:
        for uid in user_ids:
            if uid not in channel.members:
                channel.members.append(uid)
                self.publish(EmulatorEvent(EventKind.member_joined, channel.id, user=uid))
