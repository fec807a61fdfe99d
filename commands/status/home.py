"""The App Home tab: the status overview, published each time someone opens it."""

from __future__ import annotations

from typing import Any

import structlog
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from commands.status.deps import StatusDeps
from commands.status.render import home_view
from core.inflight import InFlight

log = structlog.get_logger(__name__)


async def on_home_opened(
    event: dict[str, Any], client: AsyncWebClient, deps: StatusDeps, inflight: InFlight
) -> None:
    """Bolt has acked the event; gather the overview and publish it for this user."""
    if event.get("tab", "home") != "home":
        return  # the Messages tab (disabled in the manifest) has no view to publish
    user = str(event.get("user", ""))
    config = deps.config
    async with inflight.track():
        overview = await deps.collector.overview(config.service_names, config.environment_names)
        view = home_view(overview, config.slack.command, deps.clock.now())
        await client.views_publish(user_id=user, view=view)
    log.info("home.published", user_id=user, ms=overview.ms)


def register(app: AsyncApp, deps: StatusDeps, inflight: InFlight) -> None:
    async def app_home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        await on_home_opened(event, client, deps, inflight)

    app.event("app_home_opened")(app_home_opened)
