"""What a Slack Web API refusal means for a message the bot keeps up to date."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError

# Refusals that mean the channel cannot be written to any more.
CHANNEL_GONE = frozenset({"is_archived", "channel_not_found", "not_in_channel", "access_denied"})
# Refusals of an edit that a new message fixes: the message was deleted or is too old to edit.
POST_ANEW = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})


def slack_error(exc: SlackApiError) -> str:
    """The `error` code of a refusal ("" when the response carries none)."""
    response = exc.response
    try:
        return str(response.get("error") or "")
    except AttributeError:
        return ""
