"""The one narrow object handlers get their collaborators from (through Bolt's context)."""

from __future__ import annotations

from dataclasses import dataclass

from commands.parser import Parser
from core.clock import Clock
from core.config import Config
from core.metrics import Metrics
from integrations.redis_client import RedisClient


@dataclass(frozen=True)
class Deps:
    config: Config
    parser: Parser
    redis: RedisClient
    clock: Clock
    metrics: Metrics


DEPS_KEY = "deps"
