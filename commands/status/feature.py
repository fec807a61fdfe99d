"""Status as one feature: `/dhanam status` and the App Home."""

from __future__ import annotations

from commands.feature import Feature
from commands.status import handler, home
from commands.status.deps import StatusDeps


def status_feature(deps: StatusDeps) -> Feature[StatusDeps]:
    return Feature(name="status", deps=deps, commands=[handler.register], events=[home.register])
