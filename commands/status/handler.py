"""`/dhanam status [SERVICE] [ENV]`: gather (commands.status.collector), render, reply."""

from __future__ import annotations

from commands.requests import StatusRequest
from commands.router import CommandRouter, Invocation
from commands.status.deps import StatusDeps
from commands.status.render import detail_blocks, overview_blocks


async def status(inv: Invocation[StatusDeps]) -> None:
    """Ack was sent by the router; collect, render, reply only to the caller."""
    request = inv.request
    assert isinstance(request, StatusRequest)
    collector, config = inv.deps.collector, inv.deps.config
    if request.service and request.env:
        result = await collector.one(request.service, request.env)
        text, blocks = detail_blocks(result, config.slack.command)
    else:
        services = [request.service] if request.service else config.service_names
        envs = [request.env] if request.env else config.environment_names
        title = f"{request.service or 'every service'} in {request.env or 'every environment'}"
        overview = await collector.overview(services, envs)
        text, blocks = overview_blocks(overview, config.slack.command, title)
    await inv.respond(response_type="ephemeral", text=text, blocks=blocks)


def register(router: CommandRouter, deps: StatusDeps) -> None:
    router.add("status", status, deps)
