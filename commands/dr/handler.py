"""`/dhanam dr status`: read the DR region's readiness (integrations.aws.dr), render, reply
only to the caller."""

from __future__ import annotations

from commands.dr.deps import DrDeps
from commands.dr.render import not_configured_blocks, readiness_blocks
from commands.requests import DrStatusRequest
from commands.router import CommandRouter, Invocation


async def dr_status(inv: Invocation[DrDeps]) -> None:
    """Ack was sent by the router; every source is read at once, each within its budget."""
    assert isinstance(inv.request, DrStatusRequest)
    config = inv.deps.config
    if config.dr is None:
        text, blocks = not_configured_blocks()
    else:
        readiness = await inv.deps.reader.readiness(config.dr)
        text, blocks = readiness_blocks(readiness, config.dr, config.slack.command)
    await inv.respond(response_type="ephemeral", text=text, blocks=blocks)


def register(router: CommandRouter, deps: DrDeps) -> None:
    router.add("dr_status", dr_status, deps)
