"""slack-app-manifest.yml asks for exactly the scopes the bot's Web API calls need.

The scope table is ``integrations/slack/scopes.py``. Two directions are held here:
the manifest requests ``required_scopes(METHOD_SCOPES) | EXTRA_SCOPES`` and nothing else, and
every Slack Web API method the source calls has an entry in ``METHOD_SCOPES`` — so a new call
cannot ship without its scope (Slack would answer ``missing_scope`` in production only).

PyYAML is not a runtime or direct dev dependency, so the manifest is read with a small reader for
the YAML subset it uses; when PyYAML happens to be importable the two readers must agree.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from integrations.slack.scopes import (
    EXTRA_SCOPES,
    METHOD_SCOPES,
    all_bot_scopes,
    required_scopes,
)

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "slack-app-manifest.yml"
EXAMPLE_CONFIG = ROOT / "examples" / "dhanam.example.toml"
SOURCE_DIRS = ("bot", "commands", "approvals", "integrations")
# Not Slack clients: the sandbox's Slack emulator serves these methods, and scopes.py lists them.
NOT_CALLERS = ("sandbox/slack_emulator*.py", "integrations/slack/scopes.py")


# ---- a reader for the YAML subset of the manifest -----------------------------------------------


def _scalar(text: str) -> Any:
    text = text.strip()
    if text.startswith('"'):
        return json.loads(text)
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    if text in {"true", "false"}:
        return text == "true"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def _lines(text: str) -> list[tuple[int, str]]:
    result = []
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped and not stripped.startswith("#"):
            result.append((len(raw) - len(raw.lstrip(" ")), raw.strip()))
    return result


def _block(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[Any, int]:
    if lines[i][1].startswith("- ") or lines[i][1] == "-":
        return _sequence(lines, i, indent)
    return _mapping(lines, i, indent)


def _sequence(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[list[Any], int]:
    items: list[Any] = []
    while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("-"):
        rest = lines[i][1][1:].strip()
        if re.match(r"^[\w.-]+:(\s|$)", rest):  # "- key: value" starts a mapping item
            lines[i] = (indent + 2, rest)
            item, i = _mapping(lines, i, indent + 2)
            items.append(item)
        else:
            items.append(_scalar(rest))
            i += 1
    return items, i


def _mapping(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[dict[str, Any], int]:
    result: dict[str, Any] = {}
    while i < len(lines) and lines[i][0] == indent:
        key, sep, rest = lines[i][1].partition(":")
        assert sep, f"not a mapping line: {lines[i][1]!r}"
        rest = rest.strip()
        i += 1
        if rest in {">", ">-", "|", "|-"}:
            folded = []
            while i < len(lines) and lines[i][0] > indent:
                folded.append(lines[i][1])
                i += 1
            result[key] = (" " if rest.startswith(">") else "\n").join(folded)
        elif rest:
            result[key] = _scalar(rest)
        elif i < len(lines) and (
            lines[i][0] > indent or (lines[i][0] == indent and lines[i][1].startswith("- "))
        ):
            result[key], i = _block(lines, i, lines[i][0])
        else:
            result[key] = None
    return result, i


def read_manifest_subset(text: str) -> dict[str, Any]:
    lines = _lines(text)
    value, end = _mapping(lines, 0, 0)
    assert end == len(lines), f"unread manifest line: {lines[end][1]!r}"
    return value


@pytest.fixture(scope="module")
def manifest_text() -> str:
    return MANIFEST.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def manifest(manifest_text: str) -> dict[str, Any]:
    return read_manifest_subset(manifest_text)


def test_reader_agrees_with_pyyaml_when_available(
    manifest_text: str, manifest: dict[str, Any]
) -> None:
    yaml = pytest.importorskip("yaml")
    assert yaml.safe_load(manifest_text) == manifest


# ---- the manifest -----------------------------------------------------------------------------


def test_bot_scopes_are_exactly_what_the_methods_need(manifest: dict[str, Any]) -> None:
    requested = manifest["oauth_config"]["scopes"]["bot"]
    assert len(requested) == len(set(requested)), "a scope is listed twice"
    assert set(requested) == required_scopes(METHOD_SCOPES) | set(EXTRA_SCOPES)
    assert set(requested) == all_bot_scopes()
    assert "user" not in manifest["oauth_config"]["scopes"], "the bot needs no user token"


def test_slash_command_is_the_configured_one(manifest: dict[str, Any]) -> None:
    config = tomllib.loads(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    commands = manifest["features"]["slash_commands"]
    assert [c["command"] for c in commands] == [config["slack"]["command"]]
    command = commands[0]
    assert command["should_escape"] is True, "mentions must arrive as <@U…> IDs"
    assert command["description"]
    assert command["usage_hint"]


def test_every_request_url_is_the_slack_events_route(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    urls = [
        manifest["features"]["slash_commands"][0]["url"],
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
    ]
    assert all(url.startswith("https://") and url.endswith("/slack/events") for url in urls)
    assert len(set(urls)) == 1
    assert settings["interactivity"]["is_enabled"] is True


def test_events_and_settings(manifest: dict[str, Any]) -> None:
    assert manifest["_metadata"]["major_version"] == 2
    settings = manifest["settings"]
    assert "app_home_opened" in settings["event_subscriptions"]["bot_events"]
    assert settings["socket_mode_enabled"] is False
    assert settings["token_rotation_enabled"] is False
    assert settings["org_deploy_enabled"] is False
    features = manifest["features"]
    assert features["app_home"]["home_tab_enabled"] is True
    assert features["app_home"]["messages_tab_enabled"] is False
    assert features["bot_user"] == {"display_name": "dhanam", "always_online": True}


def test_display_information_fits_slack_limits(manifest: dict[str, Any]) -> None:
    info = manifest["display_information"]
    assert info["name"] == "Dhanam ChatOps"
    assert 0 < len(info["description"]) <= 140
    if "long_description" in info:
        assert 174 < len(info["long_description"]) <= 4000
    if "background_color" in info:
        assert re.fullmatch(r"#[0-9a-fA-F]{6}", info["background_color"])


def test_header_explains_socket_mode(manifest_text: str) -> None:
    header = "\n".join(line for line in manifest_text.splitlines() if line.startswith("#")).lower()
    for words in ("socket_mode_enabled", "connections:write", "slack_app_token"):
        assert words in header


# ---- the scope table --------------------------------------------------------------------------


def test_scope_table_shape() -> None:
    for method in METHOD_SCOPES:
        assert re.fullmatch(r"[a-z]+(\.[a-zA-Z]+)+", method), method
    assert all(reason.strip() for reason in EXTRA_SCOPES.values())
    assert not set(EXTRA_SCOPES) & required_scopes(METHOD_SCOPES), "extra means not from a method"
    assert required_scopes(["views.publish", "chat.update"]) == {"chat:write"}
    with pytest.raises(KeyError, match=r"reactions\.add"):
        required_scopes(["reactions.add"])


# ---- every Web API call in the source has a scope ---------------------------------------------


@functools.cache
def sdk_methods() -> dict[str, frozenset[str]]:
    """slack_sdk client method name -> the Web API methods it calls (``chat_postMessage`` ->
    ``{"chat.postMessage"}``), read from slack_sdk's own source."""
    mapping: dict[str, frozenset[str]] = {}
    for name, member in vars(AsyncWebClient).items():
        if name.startswith("_") or not inspect.isfunction(member):
            continue
        called = re.findall(r"api_call\(\s*\"([\w.]+)\"", inspect.getsource(member))
        if called:
            mapping[name] = frozenset(called)
    # Helpers made of other methods (files_upload_v2: files.getUploadURLExternal, then
    # files.completeUploadExternal) need what those need.
    for name, member in vars(AsyncWebClient).items():
        if name.startswith("_") or not inspect.isfunction(member) or name in mapping:
            continue
        used = re.findall(r"self\.([a-z]\w*)\(", inspect.getsource(member))
        called_through = frozenset().union(*(mapping.get(u, frozenset()) for u in used))
        if called_through:
            mapping[name] = called_through
    return mapping


@functools.cache
def all_api_methods() -> frozenset[str]:
    return frozenset().union(*sdk_methods().values())


_ATTRIBUTE_CALL = re.compile(r"\.\s*([A-Za-z_]\w*)\s*\(")
_API_CALL = re.compile(r"api_call\(\s*(?:api_method\s*=\s*)?[\"']([\w.]+)[\"']")
_QUOTED = re.compile(r"[\"']([a-z]+(?:\.[A-Za-z]+)+)[\"']")
_SAY = re.compile(r"(?<![\w.])(?<!def )say\s*\(")  # Bolt's say(), not a method named say


def called_methods(source: str) -> set[str]:
    """The Slack Web API methods a piece of Python source calls.

    Finds ``client.chat_postMessage(...)`` (any slack_sdk client method, on any receiver),
    ``client.api_call("chat.postMessage", ...)``, Bolt's ``say(...)`` (chat.postMessage) and any
    quoted Web API method name (``"pins.add"``) — the last one catches outboxes that dispatch on a
    method-name string or enum value.
    """
    methods: set[str] = set()
    sdk = sdk_methods()
    for name in _ATTRIBUTE_CALL.findall(source):
        methods |= sdk.get(name, frozenset())
    methods.update(_API_CALL.findall(source))
    methods.update(m for m in _QUOTED.findall(source) if m in all_api_methods())
    if _SAY.search(source):
        methods.add("chat.postMessage")
    return methods


def source_files() -> list[Path]:
    files = []
    for directory in SOURCE_DIRS:
        for path in sorted((ROOT / directory).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if not any(relative.match(pattern) for pattern in NOT_CALLERS):
                files.append(path)
    return files


def test_the_scanner_finds_calls_in_a_synthetic_snippet() -> None:
    snippet = """
async def handler(ack, say, client, body):
    await ack()
    await client.chat_postMessage(channel="C1", text="hi")
    await self._web.usergroups_users_list(usergroup="S1")
    await client.api_call("pins.add", json={"channel": "C1"})
    await client.api_call(api_method="reactions.add")
    method = SlackMethod("conversations.setTopic")
    await say("done")
    log.info("app.started")  # a log event, not a Slack method
    self.chat_update_local(1)  # not a slack_sdk method
"""
    assert called_methods(snippet) == {
        "chat.postMessage",
        "usergroups.users.list",
        "pins.add",
        "reactions.add",
        "conversations.setTopic",
    }
    assert called_methods("x = 1\nprint('users.info is documented')\n") == set()
    assert called_methods("def say(self, text):\n    self.say(text)\n") == set()
    assert {"chat.postMessage", "views.publish", "usergroups.users.list"} <= all_api_methods()
    assert called_methods("await client.files_upload_v2(channel='C1', content='x')") == {
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    }


def test_the_scanner_reads_the_source_tree() -> None:
    files = source_files()
    assert len(files) > 5
    assert all("slack_emulator" not in path.name for path in files)


def test_every_called_method_has_a_scope() -> None:
    missing: dict[str, list[str]] = {}
    for path in source_files():
        for method in called_methods(path.read_text(encoding="utf-8")):
            if method not in METHOD_SCOPES:
                missing.setdefault(method, []).append(str(path.relative_to(ROOT)))
    assert not missing, (
        "Slack Web API methods called without an entry in integrations/slack/scopes.py "
        f"METHOD_SCOPES (add the scope there and to slack-app-manifest.yml): {missing}"
    )


def test_every_table_method_is_a_real_web_api_method() -> None:
    unknown = set(METHOD_SCOPES) - all_api_methods()
    assert not unknown, f"not a Slack Web API method known to slack_sdk: {unknown}"
