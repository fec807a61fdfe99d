"""What `/dhanam dr status` uses."""

from __future__ import annotations

from dataclasses import dataclass

from core.config import Config
from integrations.aws.dr import DrReader


@dataclass(frozen=True)
class DrDeps:
    config: Config
    reader: DrReader
