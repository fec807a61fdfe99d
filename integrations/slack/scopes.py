"""The Slack bot-token scopes the bot needs, derived from the Web API methods it calls.

``slack-app-manifest.yml`` requests exactly ``required_scopes(METHOD_SCOPES) | EXTRA_SCOPES``;
``tests/unit/test_manifest.py`` holds the manifest to that and fails when the source calls a
Web API method that has no entry here, so a new call cannot ship without its scope.
"""

from __future__ import annotations

from collections.abc import Iterable

# Web API method -> the bot scope it needs (None: no scope). Where Slack accepts several scopes
# (one per conversation type), the one for public channels is listed: the bot works in public
# channels and creates its incident channels as public ones.
METHOD_SCOPES: dict[str, str | None] = {
    "auth.test": None,  # who am I: works with any token
    "chat.postMessage": "chat:write",  # approval cards, alarms, thread replies, incident cards
    "chat.update": "chat:write",  # edit cards as requests and rollouts move on
    "chat.postEphemeral": "chat:write",  # refusals and errors only the caller sees
    "chat.delete": "chat:write",  # remove a superseded message the bot posted
    # `/dhanam logs` output past Slack's message limits, through files_upload_v2 (both steps)
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
    "conversations.create": "channels:manage",  # incident channels (public)
    "conversations.invite": "channels:manage",  # invite the declarer and commander
    "conversations.setTopic": "channels:manage",  # incident severity and status in the topic
    "conversations.info": "channels:read",  # is this an incident channel, does a name exist
    "conversations.members": "channels:read",  # who is already in an incident channel
    "conversations.join": "channels:join",  # the alarm outbox, after not_in_channel (public)
    "pins.add": "pins:write",  # pin the incident status card
    "usergroups.users.list": "usergroups:read",  # expand approver user groups (S…) to users
    "users.info": "users:read",  # names for cards and audit
    "views.open": None,  # confirm/reason modals, authorised by the interaction's trigger_id
    "views.publish": None,  # the App Home tab, authorised by the app_home_opened event
}

# Scopes no Web API method of ours needs, each with why it is requested anyway.
EXTRA_SCOPES: dict[str, str] = {
    "commands": "receive the /dhanam slash command",
    "chat:write.public": "post alarms and announcements in public channels the bot has not joined",
}


def required_scopes(methods: Iterable[str]) -> set[str]:
    """The bot scopes needed to call ``methods``; KeyError names a method missing from the table."""
    scopes: set[str] = set()
    for method in methods:
        try:
            scope = METHOD_SCOPES[method]
        except KeyError:
            raise KeyError(
                f"no scope known for Slack method {method!r}: add it to METHOD_SCOPES"
            ) from None
        if scope is not None:
            scopes.add(scope)
    return scopes


def all_bot_scopes() -> set[str]:
    """Every bot scope the app requests: the methods' scopes plus ``EXTRA_SCOPES``."""
    return required_scopes(METHOD_SCOPES) | set(EXTRA_SCOPES)
