"""Prometheus metrics, one registry per app instance (no module-level globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "dhanam_http_requests",
            "HTTP requests served, by route and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.command_latency = Histogram(
            "dhanam_command_duration_seconds",
            "Time from receiving a slash command to finishing its work, by command.",
            ["command", "outcome"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.slack_api_errors = Counter(
            "dhanam_slack_api_errors",
            "Slack Web API calls that failed, by method and error.",
            ["method", "error"],
            registry=self.registry,
        )
        self.slack_api_calls = Counter(
            "dhanam_slack_api_calls",
            "Slack Web API calls made, by method.",
            ["method"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
