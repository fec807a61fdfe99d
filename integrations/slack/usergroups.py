"""Who is in a Slack user group, from usergroups.users.list, cached briefly.

Groups fail narrowly: a group that cannot be read (Slack error, missing scope, deleted group)
contributes nobody — fail closed for that group only — while user IDs listed beside it, and
other groups that can be read, still count. One unreadable group must not block every
approver of an environment.
"""

from __future__ import annotations

import aiohttp
import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from core.clock import Clock
from core.errors import ChatOpsError

log = structlog.get_logger(__name__)

CACHE_SECONDS = 60.0


class GroupMembers:
    """Expands a list of principals (user IDs and user-group IDs) to user IDs."""

    def __init__(self, client: AsyncWebClient, clock: Clock, ttl: float = CACHE_SECONDS) -> None:
        self._client = client
        self._clock = clock
        self._ttl = ttl
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    async def members(self, group: str, *, fresh: bool = False) -> frozenset[str]:
        """The group's users; raises ChatOpsError when Slack will not say. ``fresh`` asks Slack
        again (the execution gate: is an approver still a member now?); should Slack not
        answer, a membership read within the cache's lifetime still serves."""
        now = self._clock.monotonic()
        cached = self._cache.get(group)
        recent = cached is not None and now - cached[0] < self._ttl
        if cached is not None and recent and not fresh:
            return cached[1]
        try:
            response = await self._client.usergroups_users_list(usergroup=group)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            if cached is not None and recent:
                log.warning("usergroup.stale_membership_used", group=group)
                return cached[1]
            error = _slack_error(exc)
            # Fail closed: nobody counts as a member of a group we cannot read.
            raise ChatOpsError(
                f"Could not read the members of <!subteam^{group}> from Slack ({error}) — "
                "nothing was changed. Try again in a moment."
            ) from exc
        users = frozenset(str(u) for u in response.get("users") or [])
        self._cache[group] = (now, users)
        return users

    async def resolve(
        self, principals: list[str], *, fresh: bool = False
    ) -> tuple[frozenset[str], dict[str, str]]:
        """User IDs as listed plus the members of every group that can be read, and the
        groups that could not be read with Slack's reason."""
        users: set[str] = set()
        unreadable: dict[str, str] = {}
        for principal in principals:
            if principal.startswith("S"):
                try:
                    users |= await self.members(principal, fresh=fresh)
                except ChatOpsError as exc:
                    log.warning("usergroup.unreadable", group=principal, error=exc.user_message)
                    unreadable[principal] = _slack_error(exc.__cause__ or exc)
            elif principal != "*":
                users.add(principal)
        return frozenset(users), unreadable

    async def expand(self, principals: list[str], *, fresh: bool = False) -> frozenset[str]:
        """User IDs as listed, plus the members of every group that can be read."""
        users, _unreadable = await self.resolve(principals, fresh=fresh)
        return users


def _slack_error(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError) and exc.response is not None:
        return str(exc.response.get("error", "unknown"))
    return type(exc).__name__
