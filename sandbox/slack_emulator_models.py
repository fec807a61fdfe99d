"""Data model of the Slack Web API emulator: users, channels, messages, calls, events.

Kept apart from the server (``slack_emulator``) and the method handlers
(``slack_emulator_methods``) so each stays small; everything here is re-exported by
``sandbox.slack_emulator``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

BOT_USER_ID = "U0BOT"
BOT_USER_NAME = "dhanam"
BOT_ID = "B0BOT"
APP_ID = "A0DHANAM"
TEAM_NAME = "Dhanam"
TEAM_DOMAIN = "dhanam"


@dataclass
class EmuUser:
    id: str
    name: str
    real_name: str
    is_bot: bool = False

    def to_slack(self, team_id: str) -> dict[str, Any]:
        """The ``user`` object of ``users.info``."""
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": False,
            "real_name": self.real_name,
            "tz": "Asia/Kolkata",
            "tz_label": "India Standard Time",
            "tz_offset": 19800,
            "is_admin": False,
            "is_owner": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "profile": {
                "real_name": self.real_name,
                "display_name": self.name,
                "real_name_normalized": self.real_name,
                "display_name_normalized": self.name,
                "team": team_id,
            },
        }


@dataclass
class EmuChannel:
    id: str
    name: str
    is_private: bool = False
    members: list[str] = field(default_factory=list)
    topic: str = ""
    purpose: str = ""
    is_im: bool = False
    created: int = 1700000000
    creator: str = ""
    topic_set_by: str = ""
    topic_last_set: int = 0

    def to_slack(self, viewer: str = BOT_USER_ID) -> dict[str, Any]:
        """The ``channel`` object, shaped like Slack's conversations.create/info answer."""
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "created": self.created,
            "creator": self.creator,
            "is_archived": False,
            "is_channel": not self.is_private and not self.is_im,
            "is_ext_shared": False,
            "is_general": False,
            "is_group": self.is_private,
            "is_im": self.is_im,
            "is_member": viewer in self.members,
            "is_mpim": False,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "is_private": self.is_private or self.is_im,
            "is_shared": False,
            "last_read": "0000000000.000000",
            "latest": None,
            "pending_shared": [],
            "previous_names": [],
            "priority": 0,
            "purpose": {"creator": "", "last_set": 0, "value": self.purpose},
            "topic": {
                "creator": self.topic_set_by,
                "last_set": self.topic_last_set,
                "value": self.topic,
            },
            "unlinked": 0,
            "unread_count": 0,
            "unread_count_display": 0,
            "num_members": len(self.members),
        }


@dataclass
class EmuMessage:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None = None
    thread_ts: str | None = None
    user: str = BOT_USER_ID
    edited: int = 0
    pinned: bool = False
    ephemeral_to: str | None = None
    deleted: bool = False
    reactions: dict[str, list[str]] = field(default_factory=dict)
    via: str = "chat.postMessage"
    files: list[dict[str, Any]] = field(default_factory=list)  # files.completeUploadExternal

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def to_slack(self, team_id: str) -> dict[str, Any]:
        """The ``message`` object Slack returns from chat.postMessage/chat.update."""
        out: dict[str, Any] = {"user": self.user, "type": "message", "ts": self.ts}
        if self.user == BOT_USER_ID:
            out["bot_id"] = BOT_ID
            out["app_id"] = APP_ID
        out["text"] = self.text
        out["team"] = team_id
        if self.blocks is not None:
            out["blocks"] = copy.deepcopy(self.blocks)
        if self.thread_ts is not None:
            out["thread_ts"] = self.thread_ts
        if self.files:
            out["files"] = copy.deepcopy(self.files)
            out["upload"] = True
        if self.edited:
            out["edited"] = {"user": self.user, "ts": self.ts}
        if self.reactions:
            out["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in self.reactions.items()
            ]
        return out

    def snapshot(self) -> EmuMessage:
        return copy.deepcopy(self)


@dataclass(frozen=True)
class RecordedCall:
    """One HTTP call the emulator answered (Web API method or response_url post)."""

    method: str
    params: dict[str, Any]
    at: float  # time.monotonic() when the call was handled
    status: int  # HTTP status returned
    response: dict[str, Any] | None = None  # JSON body returned, None for faults/text

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response and self.response.get("ok"))

    @property
    def error(self) -> str | None:
        if self.response is None:
            return None
        err = self.response.get("error")
        return str(err) if err is not None else None


class EventKind(StrEnum):
    message_posted = "message_posted"
    message_updated = "message_updated"
    message_deleted = "message_deleted"
    ephemeral = "ephemeral"
    channel_created = "channel_created"
    member_joined = "member_joined"
    topic_set = "topic_set"
    pinned = "pinned"
    view_published = "view_published"
    view_opened = "view_opened"
    reaction_added = "reaction_added"


@dataclass(frozen=True)
class EmulatorEvent:
    """A state change, delivered to every ``subscribe()`` queue.

    ``message`` is a snapshot taken when the event happened, so later edits do not
    rewrite history seen by the console.
    """

    kind: EventKind
    channel: str | None = None
    message: EmuMessage | None = None
    user: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Fault:
    status: int
    method: str | None
    remaining: int | None
    until: float | None
    retry_after: int

    def matches(self, method: str, now: float) -> bool:
        if self.method is not None and self.method != method:
            return False
        if self.until is not None:
            return now < self.until
        return self.remaining is None or self.remaining > 0


def dhanam_world() -> tuple[list[EmuUser], list[EmuChannel], dict[str, list[str]]]:
    """The sandbox workspace: four people, five channels, one SRE user group."""
    users = [
        EmuUser("U0ALICE", "alice", "Alice Ahmed"),
        EmuUser("U0BOB", "bob", "Bob Banerjee"),
        EmuUser("U0CAROL", "carol", "Carol Castro"),
        EmuUser("U0DAVE", "dave", "Dave Diaz"),
    ]
    everyone = [u.id for u in users] + [BOT_USER_ID]
    channels = [
        EmuChannel(cid, name, members=list(everyone))
        for cid, name in (
            ("C0OPS", "ops"),
            ("C0DEPLOYS", "deploys"),
            ("C0ALERTS", "alerts"),
            ("C0INCIDENTS", "incidents"),
            ("C0ONCALL", "oncall"),
        )
    ]
    return users, channels, {"S0SRE": ["U0BOB", "U0CAROL"]}
