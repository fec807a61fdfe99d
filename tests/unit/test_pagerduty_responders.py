"""`[pagerduty] responders`: who may acknowledge PagerDuty incidents from Slack (issue 11, 7b)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from core.config import load_config, parse_config
from core.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dhanam.example.toml"


def data(**pagerduty: Any) -> dict[str, Any]:
    loaded = tomllib.loads(EXAMPLE.read_text())
    loaded["pagerduty"] = {**loaded["pagerduty"], **pagerduty}
    return loaded


def test_responders_default_to_the_production_approvers() -> None:
    config = load_config(EXAMPLE)
    assert config.pagerduty.responders is None
    assert config.pagerduty_responders == ["U0BOB", "U0CAROL", "S0SRE"]
    assert "PagerDuty responders (may acknowledge): U0BOB, U0CAROL, S0SRE" in config.summary()


def test_without_a_production_environment_every_environments_approvers_respond() -> None:
    raw = data()
    envs = raw["environments"]
    envs["live"] = envs.pop("production")
    envs["staging"]["approvers"] = ["U0DAVE", "U0BOB"]
    config = parse_config(raw)
    assert sorted(config.pagerduty_responders) == ["S0SRE", "U0BOB", "U0CAROL", "U0DAVE"]
    assert len(config.pagerduty_responders) == 4  # each principal once


def test_configured_responders_replace_the_default() -> None:
    config = parse_config(data(responders=["U0DAVE", "S0ONCALL"]))
    assert config.pagerduty_responders == ["U0DAVE", "S0ONCALL"]


@pytest.mark.parametrize(
    ("responders", "message"),
    [
        (["*"], '"*" is not allowed'),
        ([], "list at least one responder"),
        (["bob"], "must be a Slack user ID"),
    ],
)
def test_bad_responders_are_refused_with_their_path(responders: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(data(responders=responders))
    errors = "\n".join(caught.value.errors)
    assert "pagerduty.responders" in errors
    assert message in errors
