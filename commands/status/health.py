"""The health rules of `/dhanam status`: a row's mark (ok, degraded, down) and why. Pure."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from integrations.dhanam_api import ApiHealth, Level, level

if TYPE_CHECKING:
    from commands.status.models import ServiceStatus


class Health(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"


MARKS = {
    Health.OK: ":large_green_circle:",
    Health.DEGRADED: ":large_yellow_circle:",
    Health.DOWN: ":red_circle:",
}


def assess(status: ServiceStatus) -> tuple[Health, list[str]]:
    """The row's mark and why: DOWN reasons first, then DEGRADED ones, then what is worth
    saying without changing the mark (unscoped alarms in ALARM: no environment claims them)."""
    down: list[str] = []
    degraded: list[str] = []
    ecs = status.ecs.value
    if ecs is None:
        degraded.append(f"ECS unavailable ({status.ecs.error})")
    else:
        state = ecs.state
        if state.desired > 0 and state.running == 0:
            down.append(f"running 0/{state.desired}")
        elif state.running < state.desired:
            degraded.append(f"running {state.running}/{state.desired}")
        primary = state.primary
        if primary is not None and primary.rollout_state == "FAILED":
            degraded.append("rollout failed")
        elif state.rolling_out:
            degraded.append("rollout in progress")
    if status.alarms.value is None:
        degraded.append(f"alarms unavailable ({status.alarms.error})")
    else:
        firing = sum(1 for a in status.alarms.value if a.state == "ALARM")
        if firing:
            degraded.append(f"{firing} alarm{'s' if firing > 1 else ''} in ALARM")
    if status.api is not None:
        _assess_api(status.api, down, degraded)
    health = Health.DOWN if down else Health.DEGRADED if degraded else Health.OK
    # Firing alarms no environment claims: said (never "all clear" above them), not counted.
    unscoped = sum(1 for a in status.unscoped if a.state == "ALARM")
    notes = [f"{unscoped} unscoped alarm{'s' if unscoped > 1 else ''} in ALARM"] if unscoped else []
    return health, down + degraded + notes


def _assess_api(api: ApiHealth, down: list[str], degraded: list[str]) -> None:
    health, database, providers = api.health, api.database, api.providers
    # /health: degraded marks the row degraded; any other non-good word, or no answer, is down.
    # The database and each provider: anything not good marks the row degraded (the API itself
    # still answers), with the word the API used ("provider bitso degraded", "database down").
    if health.body is None:
        down.append(f"health endpoint down ({health.error})")
    elif level(health.body.status) is Level.DEGRADED:
        degraded.append(f"API health {health.body.status}")
    elif level(health.body.status) is Level.DOWN:
        down.append(f"API health {health.body.status}")
    if database.body is None:
        degraded.append(f"database health unavailable ({database.error})")
    elif level(database.body.status) is not Level.OK:
        degraded.append(f"database {database.body.status}")
    if providers.body is None:
        degraded.append(f"providers health unavailable ({providers.error})")
    else:
        degraded.extend(
            f"provider {name} {p.status}"
            for name, p in providers.body.providers.items()
            if level(p.status) is not Level.OK
        )
