"""What `/dhanam status` and the App Home tab use."""

from __future__ import annotations

from dataclasses import dataclass

from commands.status.collector import StatusCollector
from core.clock import Clock
from core.config import Config


@dataclass(frozen=True)
class StatusDeps:
    config: Config
    clock: Clock
    collector: StatusCollector
