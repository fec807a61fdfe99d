"""Who is in a Slack user group, from usergroups.users.list, cached briefly."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from core.clock import Clock
from core.errors import ChatOpsError

CACHE_SECONDS = 60.0


class GroupMembers:
    """Expands a list of principals (user IDs and user-group IDs) to user IDs."""

    def __init__(self, client: AsyncWebClient, clock: Clock, ttl: float = CACHE_SECONDS) -> None:
        self._client = client
        self._clock = clock
        self._ttl = ttl
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    async def members(self, group: str) -> frozenset[str]:
        now = self._clock.monotonic()
        cached = self._cache.get(group)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        try:
            response = await self._client.usergroups_users_list(usergroup=group)
        except SlackApiError as exc:
            error = exc.response.get("error", "unknown") if exc.response else "unknown"
            # Fail closed: nobody counts as a member of a group we cannot read.
            raise ChatOpsError(
                f"Could not read the members of <!subteam^{group}> from Slack ({error}) — "
                "nothing was changed. Try again in a moment."
            ) from exc
        users = frozenset(str(u) for u in response.get("users") or [])
        self._cache[group] = (now, users)
        return users

    async def expand(self, principals: list[str]) -> frozenset[str]:
        users: set[str] = set()
        for principal in principals:
            if principal.startswith("S"):
                users |= await self.members(principal)
            elif principal != "*":
                users.add(principal)
        return frozenset(users)
