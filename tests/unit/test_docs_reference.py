"""The generated pages of docs/ are what their scripts write now, and the hand-written pages
name every error reason, bot scope and IAM action the code and the deploy files use."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from bot.errors import REASONS
from integrations.slack.scopes import all_bot_scopes

ROOT = Path(__file__).resolve().parents[2]


def script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("name", "page"),
    [("config_reference", "configuration.md"), ("commands_reference", "commands.md")],
)
def test_generated_page_is_up_to_date(name: str, page: str) -> None:
    committed = (ROOT / "docs" / page).read_text()
    assert committed == script(name).render(), f"run: .venv/bin/python scripts/{name}.py"


def test_configuration_reference_covers_every_key() -> None:
    from core.config import Config  # noqa: PLC0415

    text = (ROOT / "docs" / "configuration.md").read_text()
    for section, info in Config.model_fields.items():
        assert f"[{section}" in text
        model = info.annotation
        args = getattr(model, "__args__", ())
        model = args[-1] if args else model
        for key in getattr(model, "model_fields", {}):
            assert f"| `{key}` |" in text, (section, key)
    ttl = "| `ttl_seconds` | integer, 60\N{EN DASH}86400 | `900` | a request expires unapproved"
    assert ttl in text


def test_http_page_names_every_error_reason() -> None:
    text = (ROOT / "docs" / "http.md").read_text()
    for status, reason in REASONS.items():
        assert str(status) in text, status
        assert f"`{reason}`" in text, reason


def test_slack_page_names_exactly_the_manifest_scopes() -> None:
    text = (ROOT / "docs" / "slack-app.md").read_text()
    listed = {line.split("`")[1] for line in text.splitlines() if line.startswith("| `")}
    assert listed == set(all_bot_scopes())


def test_aws_page_names_every_iam_action() -> None:
    text = (ROOT / "docs" / "operating-aws.md").read_text()
    policy = json.loads((ROOT / "deploy" / "iam-policy.json").read_text())
    for statement in policy["Statement"]:
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            assert f"`{action}`" in text, action
        assert f"`{statement['Sid']}`" in text
