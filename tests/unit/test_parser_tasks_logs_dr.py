"""`run`, `logs` and `dr`: what each line means, and the refusals naming the valid choices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from commands.parser import Parser
from commands.requests import DrActivateRequest, DrStatusRequest, LogsRequest, RunRequest
from core.config import load_config
from core.errors import ParseError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dhanam.example.toml"
PARSER = Parser(load_config(EXAMPLE))


def test_run_names_a_configured_task() -> None:
    assert PARSER.parse("run api production migrate --reason schema v2") == RunRequest(
        service="api", env="production", task="migrate", reason="schema v2"
    )
    assert PARSER.parse("run API staging migrate-status") == RunRequest(
        service="api", env="staging", task="migrate-status"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("run api production migrat", 'unknown task of api "migrat" — known: migrate'),
        ("run api production rm", "known: migrate, migrate-status"),
        ("run web production migrate", "web has no one-off tasks"),
        ("run api production", "missing arguments"),
        ("run api prod migrate", 'unknown environment "prod"'),
    ],
)
def test_run_refusals_name_the_choices(text: str, message: str) -> None:
    with pytest.raises(ParseError) as caught:
        PARSER.parse(text)
    assert message in str(caught.value)


def test_logs_defaults_and_flags() -> None:
    assert PARSER.parse("logs web production") == LogsRequest(service="web", env="production")
    parsed = PARSER.parse("logs api production --since 2h --grep connection refused --limit 200")
    assert parsed == LogsRequest(
        service="api",
        env="production",
        since=timedelta(hours=2),
        grep="connection refused",
        limit=200,
    )
    moment = PARSER.parse("logs api staging --since 2026-11-26T09:30:00-06:00")
    assert isinstance(moment, LogsRequest)
    assert moment.since == datetime(2026, 11, 26, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("logs api production --limit 0", "--limit must be from 1 to 500, not 0"),
        ("logs api production --limit 501", "--limit must be from 1 to 500"),
        ("logs api production --since 15d", "at most 14d"),
        ("logs api production --since yesterday", "--since must be a window such as 15m"),
        ("logs api production --since 2026-11-26T09:30:00", "needs a timezone"),
        ("logs api production --grep", "--grep needs a value"),
        ("logs api production --tail", 'unknown option "--tail" for logs'),
    ],
)
def test_logs_refusals(text: str, message: str) -> None:
    with pytest.raises(ParseError) as caught:
        PARSER.parse(text)
    assert message in str(caught.value)


def test_dr_subcommands() -> None:
    assert PARSER.parse("dr status") == DrStatusRequest()
    assert PARSER.parse("dr activate --reason region down --break-glass") == DrActivateRequest(
        reason="region down", break_glass=True
    )
    for text, message in (
        ("dr", 'unknown dr command "" — known: status, activate'),
        ("dr failover", "known: status, activate"),
        ("dr status --reason x", "dr status takes no options"),
        ("dr status now", 'unexpected "now"'),
    ):
        with pytest.raises(ParseError) as caught:
            PARSER.parse(text)
        assert message in str(caught.value), text
