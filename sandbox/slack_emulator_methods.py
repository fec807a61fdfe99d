"""Web API method handlers of the Slack emulator (no HTTP here).

``SlackWorld.call(method, params)`` answers like Slack's Web API would, as a JSON-able
dict, and publishes an ``EmulatorEvent`` for every state change through ``publish``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sandbox.block_kit import MESSAGE_TEXT_MAX, Surface, block_errors, view_errors
from sandbox.slack_emulator_files import FileStore
from sandbox.slack_emulator_models import (
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    BOT_USER_NAME,
    TEAM_DOMAIN,
    TEAM_NAME,
    EmuChannel,
    EmulatorEvent,
    EmuMessage,
    EmuUser,
    EventKind,
)
from sandbox.slack_emulator_state import (
    Answer,
    Params,
    WorkspaceState,
    channel_name_error,
    err,
    flag_param,
    json_param,
    text_param,
)

Handler = Callable[[Params], Answer]
_TOPIC_MAX = 250
_VIEW_HASH_PREFIX = "1700000000"


class SlackWorld(WorkspaceState):
    """Workspace state plus one handler per supported Web API method."""

    def __init__(
        self,
        *,
        team_id: str,
        users: list[EmuUser],
        channels: list[EmuChannel],
        usergroups: dict[str, list[str]],
        publish: Callable[[EmulatorEvent], None],
    ) -> None:
        super().__init__(
            team_id=team_id,
            users=users,
            channels=channels,
            usergroups=usergroups,
            publish=publish,
        )
        self.uploads = FileStore(self.add_message)
        self.handlers: dict[str, Handler] = {
            "auth.test": self.auth_test,
            "chat.postMessage": self.chat_post_message,
            "chat.update": self.chat_update,
            "chat.postEphemeral": self.chat_post_ephemeral,
            "chat.delete": self.chat_delete,
            "conversations.create": self.conversations_create,
            "conversations.invite": self.conversations_invite,
            "conversations.setTopic": self.conversations_set_topic,
            "conversations.info": self.conversations_info,
            "conversations.members": self.conversations_members,
            "conversations.join": self.conversations_join,
            "pins.add": self.pins_add,
            "usergroups.users.list": self.usergroups_users_list,
            "users.info": self.users_info,
            "views.open": self.views_open,
            "views.publish": self.views_publish,
            "reactions.add": self.reactions_add,
            "files.getUploadURLExternal": self.uploads.get_upload_url,
            "files.completeUploadExternal": self.complete_upload,
        }

    def complete_upload(self, params: Params) -> Answer:
        return self.uploads.complete(params, self.resolve_channel, self.next_ts, self.find_message)

    def call(self, method: str, params: Params) -> Answer:
        handler = self.handlers.get(method)
        if handler is None:
            return err("unknown_method")
        return self.archived_refusal(method, params) or handler(params)

    def auth_test(self, _params: Params) -> Answer:
        return {
            "ok": True,
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": TEAM_NAME,
            "user": BOT_USER_NAME,
            "team_id": self.team_id,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _message_content(self, params: Params) -> tuple[str | None, Any]:
        return text_param(params, "text"), json_param(params, "blocks")

    @staticmethod
    def refuse_message(text: str | None, blocks: Any) -> Answer | None:
        """What Slack answers to a message it refuses (sandbox/block_kit.py), else None.
        ``blocks`` that are not JSON (or not an array) are ``invalid_blocks_format``."""
        if text is not None and len(text) > MESSAGE_TEXT_MAX:
            return err("msg_too_long")
        if blocks is None or blocks == []:
            return None
        if not isinstance(blocks, list):
            return err("invalid_blocks_format")
        errors = block_errors(blocks, Surface.MESSAGE)
        if not errors:
            return None
        return err(
            "invalid_blocks",
            errors=errors,
            response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
        )

    @staticmethod
    def refuse_view(view: dict[str, Any]) -> Answer | None:
        """Slack answers an invalid view with ``invalid_arguments`` and the reasons in
        ``response_metadata.messages`` (not ``invalid_blocks``); ``errors`` repeats them."""
        errors = view_errors(view)
        if not errors:
            return None
        return err(
            "invalid_arguments",
            errors=errors,
            response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
        )

    def chat_post_message(self, params: Params) -> Answer:
        channel = self.resolve_channel(text_param(params, "channel"), names_and_users=True)
        if channel is None:
            return err("channel_not_found")
        text, blocks = self._message_content(params)
        if text is None and not blocks and not json_param(params, "attachments"):
            return err("no_text")
        refused = self.refuse_message(text, blocks)
        if refused is not None:
            return refused
        thread_ts = text_param(params, "thread_ts")
        if thread_ts is not None:
            parent = self.find_message(channel.id, thread_ts)
            if parent is None:
                return err("invalid_thread_ts")
            thread_ts = parent.thread_ts or parent.ts
            parent.thread_ts = thread_ts
        msg = EmuMessage(channel.id, self.next_ts(), text or "", blocks, thread_ts)
        self.add_message(msg)
        return {
            "ok": True,
            "channel": channel.id,
            "ts": msg.ts,
            "message": msg.to_slack(self.team_id),
        }

    def chat_update(self, params: Params) -> Answer:
        channel = self.resolve_channel(text_param(params, "channel"))
        if channel is None:
            return err("channel_not_found")
        msg = self.find_message(channel.id, text_param(params, "ts") or "")
        if msg is None:
            return err("message_not_found")
        text, blocks = self._message_content(params)
        if text is None and blocks is None and params.get("attachments") is None:
            return err("no_text")
        refused = self.refuse_message(text, blocks)
        if refused is not None:
            return refused
        self.edit_message(msg, text, blocks)
        return {
            "ok": True,
            "channel": channel.id,
            "ts": msg.ts,
            "text": msg.text,
            "message": msg.to_slack(self.team_id),
        }

    def chat_post_ephemeral(self, params: Params) -> Answer:
        channel = self.resolve_channel(text_param(params, "channel"), names_and_users=True)
        if channel is None:
            return err("channel_not_found")
        user = text_param(params, "user")
        if user is None or user not in self.users:
            return err("user_not_found")
        if user not in channel.members:
            return err("user_not_in_channel")
        text, blocks = self._message_content(params)
        if text is None and not blocks and not json_param(params, "attachments"):
            return err("no_text")
        refused = self.refuse_message(text, blocks)
        if refused is not None:
            return refused
        msg = EmuMessage(
            channel.id,
            self.next_ts(),
            text or "",
            blocks,
            text_param(params, "thread_ts"),
            ephemeral_to=user,
            via="chat.postEphemeral",
        )
        self.add_message(msg)
        return {"ok": True, "message_ts": msg.ts}

    def chat_delete(self, params: Params) -> Answer:
        channel = self.resolve_channel(text_param(params, "channel"))
        if channel is None:
            return err("channel_not_found")
        msg = self.find_message(channel.id, text_param(params, "ts") or "")
        if msg is None:
            return err("message_not_found")
        self.delete_message(msg)
        return {"ok": True, "channel": channel.id, "ts": msg.ts}

    def conversations_create(self, params: Params) -> Answer:
        name = text_param(params, "name")
        problem = channel_name_error(name)
        if problem is not None:
            return err(problem)
        assert name is not None
        if any(c.name == name for c in self.channels.values()):
            return err("name_taken")
        self._channel_seq += 1
        channel = EmuChannel(
            f"C0NEW{self._channel_seq:05d}",
            name,
            is_private=flag_param(params, "is_private"),
            members=[BOT_USER_ID],
            created=int(time.time()),
            creator=BOT_USER_ID,
        )
        self.channels[channel.id] = channel
        self.publish(EmulatorEvent(EventKind.channel_created, channel.id, data={"name": name}))
        return {"ok": True, "channel": channel.to_slack()}

    def conversations_invite(self, params: Params) -> Answer:
        """Invite users; ``already_in_channel`` only when *every* listed user is a member.

        Simplification of Slack: a mix of members and non-members succeeds and adds the
        new ones (Slack does the same); unknown users fail the whole call.
        """
        channel = self.resolve_channel(text_param(params, "channel"))
        if channel is None:
            return err("channel_not_found")
        raw = text_param(params, "users") or ""
        user_ids = [u.strip() for u in raw.split(",") if u.strip()]
        if not user_ids:
            return err("no_user")
        if BOT_USER_ID in user_ids:
            return err("cant_invite_self")
        unknown = [u for u in user_ids if u not in self.users]
        if unknown:
            return err(
                "user_not_found",
                errors=[{"user": u, "ok": False, "error": "user_not_found"} for u in unknown],
            )
        new = [u for u in user_ids if u not in channel.members]
        if not new:
            return err(
                "already_in_channel",
                errors=[{"user": u, "ok": False, "error": "already_in_channel"} for u in user_ids],
            )
        self.add_members(channel, new)
        return {"ok": True, "channel": channel.to_slack()}

    def conversations_set_topic(self, params: Params) -> Answer:
        channel = self.resolve_channel(text_param(params, "channel"))
        if channel is None:
            return err("channel_not_found")
        topic = text_param(params, "topic") or ""
        if len(topic) > _TOPIC_MAX:
            return err("too_long")
        channel.topic = topic
        channel.topic_set_by = BOT_USER_ID
        channel.topic_last_set = int(time.time())
        self.publish(EmulatorEvent(EventKind.topic_set, channel.id, data={"topic": topic}))
        return {"ok": True, "channel": channel.to_slack()}

    def conversations_info(self, params: Params) -> Answer:
        channel = self.resolve_channel(text_param(params, "channel"))
        if channel is None:
            return err("channel_not_found")
        return {"ok": True, "channel": channel.to_slack()}

    def conversations_join(self, params: Params) -> Answer:
        """The bot joins a public channel; Slack refuses it for private ones."""
        channel = self.resolve_channel(text_param(params, "channel"))
        if channel is None:
            return err("channel_not_found")
        if channel.is_private or channel.is_im:
            return err("method_not_supported_for_channel_type")
        if BOT_USER_ID not in channel.members:
            channel.members.append(BOT_USER_ID)
        return {"ok": True, "channel": channel.to_slack()}

    def conversations_members(self, params: Params) -> Answer:
        channel = self.resolve_channel(text_param(params, "channel"))
        if channel is None:
            return err("channel_not_found")
        limit = int(text_param(params, "limit") or 100)
        start = int(text_param(params, "cursor") or 0)
        page = channel.members[start : start + limit]
        more = start + limit < len(channel.members)
        return {
            "ok": True,
            "members": page,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def pins_add(self, params: Params) -> Answer:
        channel = self.resolve_channel(text_param(params, "channel"))
        if channel is None:
            return err("channel_not_found")
        msg = self.find_message(channel.id, text_param(params, "timestamp") or "")
        if msg is None:
            return err("message_not_found")
        if msg.pinned:
            return err("already_pinned")
        msg.pinned = True
        self.publish(EmulatorEvent(EventKind.pinned, channel.id, msg.snapshot()))
        return {"ok": True}

    def usergroups_users_list(self, params: Params) -> Answer:
        group = text_param(params, "usergroup")
        if group is None or group not in self.usergroups:
            return err("no_such_subteam")
        return {"ok": True, "users": list(self.usergroups[group])}

    def users_info(self, params: Params) -> Answer:
        user = self.users.get(text_param(params, "user") or "")
        if user is None:
            return err("user_not_found")
        return {"ok": True, "user": user.to_slack(self.team_id)}

    def _view_object(self, view: dict[str, Any], view_id: str) -> dict[str, Any]:
        return {
            "id": view_id,
            "team_id": self.team_id,
            "type": view.get("type"),
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{_VIEW_HASH_PREFIX}.{view_id}",
            "title": view.get("title"),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "clear_on_close": False,
            "notify_on_close": False,
            "root_view_id": view_id,
            "previous_view_id": None,
            "app_id": APP_ID,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": BOT_ID,
        }

    def _parse_view(self, params: Params) -> dict[str, Any] | None:
        view = json_param(params, "view")
        if not isinstance(view, dict) or not isinstance(view.get("type"), str):
            return None
        return view

    def views_open(self, params: Params) -> Answer:
        if text_param(params, "trigger_id") is None:
            return err("invalid_arguments")
        view = self._parse_view(params)
        if view is None or view["type"] != "modal":
            return err("invalid_arguments")
        refused = self.refuse_view(view)
        if refused is not None:
            return refused
        view_id = f"V0{len(self.views) + 1:08d}"
        obj = self._view_object(view, view_id)
        self.views[view_id] = obj
        self.publish(EmulatorEvent(EventKind.view_opened, data={"view": obj}))
        return {"ok": True, "view": obj}

    def views_publish(self, params: Params) -> Answer:
        user_id = text_param(params, "user_id")
        if user_id is None or user_id not in self.users:
            return err("user_not_found")
        view = self._parse_view(params)
        if view is None or view["type"] != "home":
            return err("invalid_arguments")
        refused = self.refuse_view(view)
        if refused is not None:
            return refused
        view_id = f"V0{len(self.views) + 1:08d}"
        obj = self._view_object(view, view_id)
        self.views[view_id] = obj
        self.published[user_id] = obj
        self.publish(EmulatorEvent(EventKind.view_published, user=user_id, data={"view": obj}))
        return {"ok": True, "view": obj}

    def reactions_add(self, params: Params) -> Answer:
        channel = self.resolve_channel(text_param(params, "channel"))
        if channel is None:
            return err("channel_not_found")
        name = (text_param(params, "name") or "").strip(":")
        if not name:
            return err("invalid_name")
        msg = self.find_message(channel.id, text_param(params, "timestamp") or "")
        if msg is None:
            return err("message_not_found")
        users = msg.reactions.setdefault(name, [])
        if BOT_USER_ID in users:
            return err("already_reacted")
        users.append(BOT_USER_ID)
        self.publish(
            EmulatorEvent(EventKind.reaction_added, channel.id, msg.snapshot(), data={"name": name})
        )
        return {"ok": True}
