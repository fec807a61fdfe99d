"""Alarms as one feature: the Acknowledge button, and the background reminders and outbox
recovery (the SNS intake is a webhook route of the process)."""

from __future__ import annotations

from commands.alarms import buttons
from commands.alarms.deps import AlarmsDeps
from commands.feature import Feature


def alarms_feature(deps: AlarmsDeps) -> Feature[AlarmsDeps]:
    return Feature(
        name="alarms",
        deps=deps,
        buttons=[buttons.buttons],
        jobs={"alarms.background": deps.alarms.run_background},
    )
