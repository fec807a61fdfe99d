"""Block Kit for a terminal: what a person would read in Slack, as plain lines. Pure functions.

Hand-written: no library renders Block Kit to text. Covers what the bot sends — header,
section (text, fields, accessory), context, divider, actions (numbered buttons), rich_text
lists — and Slack's mrkdwn entities (mentions, channels, links, escapes).
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Callable, Mapping
from typing import Any

WIDTH = 78
_ENTITY = re.compile(r"<([@#!]?)([^>|]+)(?:\|([^>]*))?>")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_([^_\n]+)_(?![\w_])")
_EMOJI = {
    "white_check_mark": "✅",
    "x": "❌",
    "hourglass_flowing_sand": "⏳",
    "hourglass": "⌛",
    "gear": "⚙️",
    "no_entry": "⛔",
    "heavy_multiplication_x": "✖️",
    "grey_question": "❔",
    "lock": "🔒",
    "unlock": "🔓",
    "rotating_light": "🚨",
    "warning": "⚠️",
    "fire": "🔥",
    "large_green_circle": "🟢",
    "red_circle": "🔴",
    "large_yellow_circle": "🟡",
    "ballot_box_with_check": "☑️",
    "arrows_counterclockwise": "🔄",
}
_EMOJI_CODE = re.compile(r":([a-z0-9_+-]+):")


def mrkdwn(text: str, names: Mapping[str, str]) -> str:
    """Slack's mrkdwn entities as a person sees them: `<@U0BOB>` -> `@bob`."""

    def entity(match: re.Match[str]) -> str:
        sigil, target, label = match.group(1), match.group(2), match.group(3)
        if sigil == "@":
            return "@" + (label or names.get(target, target))
        if sigil == "#":
            return "#" + (label or names.get(target, target))
        if sigil == "!" and target.startswith("date^"):
            return label or target
        if sigil == "!" and target.startswith("subteam^"):
            return "@" + (label or names.get(target.split("^")[1], target.split("^")[1]))
        if sigil == "!":
            return "@" + (label or target.split("^")[0])
        return f"{label} ({target})" if label else target

    text = _ENTITY.sub(entity, text)
    text = _BOLD.sub(r"\1", text)
    text = _ITALIC.sub(r"\1", text)
    text = _EMOJI_CODE.sub(lambda m: _EMOJI.get(m.group(1), m.group(0)), text)
    return html.unescape(text)


def _text(obj: Any, names: Mapping[str, str]) -> str:
    if not isinstance(obj, dict):
        return ""
    raw = str(obj.get("text", ""))
    return mrkdwn(raw, names) if obj.get("type") == "mrkdwn" else html.unescape(raw)


def _wrap(text: str, indent: str = "") -> list[str]:
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        wrapped = textwrap.wrap(paragraph, WIDTH - len(indent), replace_whitespace=False)
        lines.extend(indent + line for line in (wrapped or [""]))
    return lines


def _rich_text(block: dict[str, Any], names: Mapping[str, str]) -> list[str]:
    out: list[str] = []

    def inline(elements: list[dict[str, Any]]) -> str:
        parts = []
        for el in elements:
            kind = el.get("type")
            if kind == "text":
                parts.append(str(el.get("text", "")))
            elif kind == "user":
                uid = str(el.get("user_id", ""))
                parts.append("@" + names.get(uid, uid))
            elif kind == "channel":
                cid = str(el.get("channel_id", ""))
                parts.append("#" + names.get(cid, cid))
            elif kind == "link":
                parts.append(str(el.get("text") or el.get("url", "")))
            elif kind == "emoji":
                parts.append(f":{el.get('name', '')}:")
        return "".join(parts)

    for element in block.get("elements", []):
        if element.get("type") == "rich_text_list":
            for item in element.get("elements", []):
                out.extend(_wrap("• " + inline(item.get("elements", []))))
        else:
            out.extend(_wrap(inline(element.get("elements", []))))
    return out


class ButtonCounter:
    """Numbers buttons across one rendered message, in reading order (1, 2, 3…)."""

    def __init__(self) -> None:
        self.count = 0

    def label(self, element: dict[str, Any], names: Mapping[str, str]) -> str:
        self.count += 1
        text = _text(element.get("text"), names)
        style = element.get("style")
        mark = {"primary": "", "danger": "!"}.get(str(style), "")
        return f"[{self.count} {text}{mark}]"


def render_blocks(blocks: list[dict[str, Any]], names: Mapping[str, str]) -> list[str]:
    counter = ButtonCounter()
    lines: list[str] = []
    renderers: dict[str, Callable[[dict[str, Any]], list[str]]] = {
        "header": lambda b: [_text(b.get("text"), names).upper()],
        "divider": lambda _b: ["─" * 40],
        "context": lambda b: _wrap(
            "  ".join(
                _text(el, names) if el.get("type") in ("mrkdwn", "plain_text") else ""
                for el in b.get("elements", [])
            ),
            "  ",
        ),
        "actions": lambda b: _wrap(
            " ".join(
                counter.label(el, names)
                for el in b.get("elements", [])
                if el.get("type") == "button"
            )
        ),
        "rich_text": lambda b: _rich_text(b, names),
    }
    for block in blocks:
        kind = str(block.get("type"))
        if kind == "section":
            if block.get("text"):
                lines.extend(_wrap(_text(block["text"], names)))
            for field in block.get("fields", []):
                # A field is "label\nvalue": one line reads better in a terminal.
                lines.extend(_wrap(" ".join(_text(field, names).splitlines()), "  "))
            accessory = block.get("accessory")
            if isinstance(accessory, dict) and accessory.get("type") == "button":
                lines.append("  " + counter.label(accessory, names))
        elif kind in renderers:
            lines.extend(renderers[kind](block))
        elif kind == "image":
            lines.append(f"[image: {block.get('alt_text', '')}]")
    return lines


def render_message(
    *,
    author: str,
    text: str,
    blocks: list[dict[str, Any]] | None,
    names: Mapping[str, str],
    where: str,
    kind: str = "",
    in_thread: bool = False,
) -> str:
    """One message as a block of lines, with a one-line heading saying who, where and what."""
    body = render_blocks(blocks, names) if blocks else _wrap(mrkdwn(text, names))
    heading = f"{author} in {where}" + (f" ({kind})" if kind else "")
    indent = "    │ " if in_thread else "│ "
    prefix = "    ↳ " if in_thread else ""
    return "\n".join([prefix + heading, *(indent + line for line in body)])
