"""Names for incident cards come from users.info: a name Slack will not give is not asked
for again on every card refresh, and the cache stays bounded."""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackApiError

from commands.incidents import channel
from commands.incidents.channel import IncidentSlack


class Client:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def users_info(self, *, user: str) -> dict[str, Any]:
        self.asked.append(user)
        if user == "U0GHOST":
            raise SlackApiError("user_not_found", {"ok": False, "error": "user_not_found"})
        return {"user": {"profile": {"display_name": user.lower()}}}


async def test_a_failed_lookup_is_not_repeated_on_every_refresh() -> None:
    client = Client()
    slack = IncidentSlack(client)  # type: ignore[arg-type]
    for _ in range(3):
        assert await slack.names("paging <@U0GHOST> and <@U0BOB>") == {"U0BOB": "u0bob"}
    assert client.asked == ["U0GHOST", "U0BOB"]  # each asked once


async def test_the_name_cache_is_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(channel, "NAMES_KEPT", 3)
    client = Client()
    slack = IncidentSlack(client)  # type: ignore[arg-type]
    for n in range(5):
        await slack.names("", f"U0USER{n}")
    assert len(slack._names) == 3
    await slack.names("", "U0USER0")  # pushed out: asked again
    assert client.asked.count("U0USER0") == 2
