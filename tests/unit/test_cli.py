"""The command line: start-up failures are one clear line and exit 1, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import core.settings as settings_module

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "dhanam.example.toml"


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DHANAM_", "PAGERDUTY_"))
    }
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        check=False,
        text=True,
        env=clean,
        timeout=60,
        cwd=cwd,
    )


def test_check_config_prints_a_summary() -> None:
    result = run("check-config", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
    assert (
        "environment production: us-east-1/dhanam-production, 1 approval from "
        "[U0BOB, U0CAROL, S0SRE], 1 freeze window, 2 alarms"
    ) in result.stdout
    # Staging needs no approval: said so, not "0 approvals from [none]".
    assert (
        "environment staging: us-east-1/dhanam-staging, runs without approval, "
        "0 freeze windows, 0 alarms"
    ) in result.stdout
    assert "0 approvals" not in result.stdout


def test_check_config_lists_every_error_with_its_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        EXAMPLE.read_text()
        .replace('alerts_channel = "C0ALERTS"', 'alerts_channel = "alerts"')
        .replace("approvals_required = 1", "approvals_requried = 1")
    )
    result = run("check-config", str(bad))
    assert result.returncode == 1
    assert "slack.alerts_channel: must be a Slack channel ID" in result.stderr
    assert "environments.production.approvals_requried: unknown key" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_uses_dhanam_config_variable(tmp_path: Path) -> None:
    missing = tmp_path / "none.toml"
    result = run("check-config", env={"DHANAM_CONFIG": str(missing)})
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"dhanam-bot: config file not found: {missing} (from DHANAM_CONFIG)"
    ]


def test_check_config_names_the_path_it_was_given() -> None:
    result = run("check-config", "/nonexistent.toml", env={"DHANAM_CONFIG": str(EXAMPLE)})
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "dhanam-bot: config file not found: /nonexistent.toml (the path given to check-config)"
    ]


def test_no_config_at_all_points_to_the_example(tmp_path: Path) -> None:
    # Outside the checkout the example is named by a path that exists from there.
    for args in (("check-config",), ("serve",)):
        env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}
        result = run(*args, env=env, cwd=tmp_path)
        assert result.returncode == 1
        assert result.stderr.splitlines() == [
            f"dhanam-bot: config file not found: dhanam.toml (the default, in {tmp_path}; "
            f"DHANAM_CONFIG is not set) — start from the example: cp {EXAMPLE} dhanam.toml"
        ], args
        assert EXAMPLE.is_file()


def test_in_the_checkout_the_hint_is_the_short_copy(tmp_path: Path) -> None:
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "dhanam.example.toml").write_text(EXAMPLE.read_text())
    result = run("check-config", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0].endswith(
        "— start from the example: cp examples/dhanam.example.toml dhanam.toml"
    )


def test_without_the_example_beside_the_code_the_hint_names_the_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(settings_module, "_SHIPPED_EXAMPLE", tmp_path / "gone.toml")
    hint = settings_module.no_config_hint()
    assert hint == (
        "start from the example, examples/dhanam.example.toml in the dhanam-chatops "
        "repository (every key: docs/configuration.md)"
    )
    assert "\n" not in hint


def test_an_unreadable_config_is_one_line_naming_it(tmp_path: Path) -> None:
    env = {"DHANAM_CONFIG": str(tmp_path), "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "x"}
    result = run("socket", env=env)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"dhanam-bot: config file {tmp_path} (from DHANAM_CONFIG) cannot be read: Is a directory"
    ]


def test_serve_without_secrets_fails_with_one_line() -> None:
    result = run("serve", env={"DHANAM_CONFIG": str(EXAMPLE)})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "dhanam-bot: SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are not set "
        "(required for `dhanam-bot serve`)"
    ]


def test_socket_needs_the_app_token() -> None:
    result = run("socket", env={"DHANAM_CONFIG": str(EXAMPLE), "SLACK_BOT_TOKEN": "xoxb-1"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "dhanam-bot: SLACK_APP_TOKEN is not set (required for `dhanam-bot socket`)"
    ]


def test_serve_with_bad_config_fails_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text().replace('cluster = "dhanam-staging"', "cluster = 5"))
    env = {"DHANAM_CONFIG": str(bad), "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}
    result = run("serve", env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "dhanam-bot: environments.staging.cluster: Input should be a valid string"
    )


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("LOG_LEVEL", "loud", "LOG_LEVEL: must be one of debug, info, warning, error, critical"),
        ("REDIS_URL", "http://x", "REDIS_URL: must start with redis://, rediss:// or unix://"),
        ("PORT", "99999", "PORT: Input should be less than or equal to 65535"),
    ],
)
def test_bad_environment_is_one_line(name: str, value: str, expected: str) -> None:
    env = {
        "DHANAM_CONFIG": str(EXAMPLE),
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s",
        name: value,
    }
    result = run("serve", env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"dhanam-bot: {expected}"]


def test_secrets_never_reach_the_output(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[slack\n")
    env = {
        "DHANAM_CONFIG": str(bad),
        "SLACK_BOT_TOKEN": "xoxb-very-secret",
        "SLACK_SIGNING_SECRET": "shh-secret",
    }
    result = run("serve", env=env)
    assert result.returncode == 1
    assert "very-secret" not in result.stderr + result.stdout
    assert "shh-secret" not in result.stderr + result.stdout
