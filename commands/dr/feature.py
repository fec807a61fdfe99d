"""Disaster recovery as one feature: `/dhanam dr status` (read-only, no approval)."""

from __future__ import annotations

from commands.dr import handler
from commands.dr.deps import DrDeps
from commands.feature import Feature


def dr_feature(deps: DrDeps) -> Feature[DrDeps]:
    return Feature(name="dr", deps=deps, commands=[handler.register])
