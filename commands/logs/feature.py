"""Logs as one feature: `/dhanam logs SERVICE ENV [--since] [--grep] [--limit]`."""

from __future__ import annotations

from commands.feature import Feature
from commands.logs import handler
from commands.logs.deps import LogsDeps


def logs_feature(deps: LogsDeps) -> Feature[LogsDeps]:
    return Feature(name="logs", deps=deps, commands=[handler.register])
