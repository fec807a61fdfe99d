"""Scenario: starting the bot logs no warning from Slack Bolt (issue 14).

Bolt reads SLACK_BOT_TOKEN from the environment by itself whenever no token is passed, and
warns "As you gave `client` as well, `token` will be unused" when a client is given too; the
bot's client is the one token source, so a start with the variable set (as in production) must
say nothing.
"""

from __future__ import annotations

import logging

import pytest

from core.settings import LogFormat
from sandbox.world import SandboxWorld


class _BoltWarnings(logging.Handler):
    """Collects every warning Bolt logs (its loggers are named slack_bolt…)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("slack_bolt"):
            self.messages.append(record.getMessage())


async def test_starting_the_app_logs_no_bolt_warning(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-the-environment")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "signing-secret-from-the-environment")
    watcher = _BoltWarnings()
    root = logging.getLogger()
    root.addHandler(watcher)
    sandbox = SandboxWorld(redis_url=redis_url, aws=False, log_format=LogFormat.JSON)
    try:
        await sandbox.start()
        assert (await sandbox.slash("help")).status == 200
    finally:
        root.removeHandler(watcher)
        await sandbox.stop()
    assert watcher.messages == []
