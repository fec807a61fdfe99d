"""Block Kit validation: what real Slack refuses, checked the same way by the emulator and tests.

Two layers, both needed:

* slack_sdk's models (``slack_sdk.models.blocks``): ``Block.parse`` then ``to_dict()``, which
  runs every ``@JsonValidator`` of the block and, recursively, of its elements and composition
  objects — section text ≤ 3000 and ≤ 10 fields, header ≤ 150, ≤ 25 elements in an actions
  block and ≤ 10 in a context block, button text ≤ 75 and value ≤ 2000, action_id and
  block_id ≤ 255, confirm dialogs (title ≤ 100, text ≤ 300, buttons ≤ 30), option lists…
* what slack_sdk leaves out and Slack's API still refuses (Block Kit reference,
  docs.slack.dev/reference/block-kit): the number of blocks per surface (50 in a message,
  100 in a modal or the Home tab), each section field ≤ 2000, a text object of 1 to 3000
  characters, header and button text ``plain_text`` only, a ``block_id`` unique in the
  payload and an ``action_id`` unique in its block, and the message ``text`` ≤ 40,000
  characters (``msg_too_long``).

Errors read like Slack's, e.g.
``"must be less than 3001 characters [json-pointer:/blocks/2/text/text]"``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

__all__ = [
    "BLOCK_ID_MAX",
    "BUTTON_TEXT_MAX",
    "FIELD_TEXT_MAX",
    "HEADER_TEXT_MAX",
    "MESSAGE_MAX_BLOCKS",
    "MESSAGE_TEXT_MAX",
    "SECTION_TEXT_MAX",
    "TEXT_OBJECT_MAX",
    "VIEW_MAX_BLOCKS",
    "InvalidBlocksError",
    "Surface",
    "block_errors",
    "check_blocks",
    "view_errors",
]

MESSAGE_MAX_BLOCKS = 50
VIEW_MAX_BLOCKS = 100
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
TEXT_OBJECT_MAX = 3000
HEADER_TEXT_MAX = 150
BUTTON_TEXT_MAX = 75
BLOCK_ID_MAX = 255
MESSAGE_TEXT_MAX = 40_000

_TEXT_TYPES = ("plain_text", "mrkdwn")
_MODEL_ERRORS = (SlackObjectFormationError, TypeError, ValueError, KeyError, AttributeError)

# slack_sdk warns (through logging) about keys it does not model; the validator reports what
# Slack refuses and nothing else, so those warnings are noise here.
logging.getLogger("slack_sdk.models").setLevel(logging.ERROR)


class Surface(StrEnum):
    MESSAGE = "message"
    MODAL = "modal"
    HOME = "home"


_MAX_BLOCKS = {
    Surface.MESSAGE: MESSAGE_MAX_BLOCKS,
    Surface.MODAL: VIEW_MAX_BLOCKS,
    Surface.HOME: VIEW_MAX_BLOCKS,
}


class InvalidBlocksError(ValueError):
    """Blocks Slack would refuse; ``errors`` are Slack-style messages with a json-pointer."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def _too_long(limit: int, pointer: str) -> str:
    return f"must be less than {limit + 1} characters [json-pointer:{pointer}]"


def _text_object(obj: Any, pointer: str, limit: int, *, plain_only: bool = False) -> Iterator[str]:
    allowed = ("plain_text",) if plain_only else _TEXT_TYPES
    if not isinstance(obj, dict) or obj.get("type") not in allowed:
        yield f"must be a {' or '.join(allowed)} text object [json-pointer:{pointer}]"
        return
    text = obj.get("text")
    if not isinstance(text, str):
        yield f"must provide a string [json-pointer:{pointer}/text]"
    elif not text:
        yield f"must be more than 0 characters [json-pointer:{pointer}/text]"
    elif len(text) > limit:
        yield _too_long(limit, f"{pointer}/text")


def _element(element: Any, pointer: str) -> Iterator[str]:
    if not isinstance(element, dict):
        yield f"must be an object [json-pointer:{pointer}]"
        return
    if element.get("type") == "button":
        yield from _text_object(
            element.get("text"), f"{pointer}/text", BUTTON_TEXT_MAX, plain_only=True
        )


def _layout(block: dict[str, Any], pointer: str) -> Iterator[str]:
    """The per-block rules slack_sdk's models do not check."""
    kind = block.get("type")
    if kind == "section":
        if "text" in block:
            yield from _text_object(block["text"], f"{pointer}/text", SECTION_TEXT_MAX)
        for i, field in enumerate(block.get("fields") or []):
            yield from _text_object(field, f"{pointer}/fields/{i}", FIELD_TEXT_MAX)
        if "accessory" in block:
            yield from _element(block["accessory"], f"{pointer}/accessory")
    elif kind == "header":
        yield from _text_object(
            block.get("text"), f"{pointer}/text", HEADER_TEXT_MAX, plain_only=True
        )
    elif kind == "context":
        for i, element in enumerate(block.get("elements") or []):
            if isinstance(element, dict) and element.get("type") in _TEXT_TYPES:
                yield from _text_object(element, f"{pointer}/elements/{i}", TEXT_OBJECT_MAX)
    elif kind == "actions":
        seen: set[str] = set()
        for i, element in enumerate(block.get("elements") or []):
            yield from _element(element, f"{pointer}/elements/{i}")
            action_id = element.get("action_id") if isinstance(element, dict) else None
            if isinstance(action_id, str):
                if action_id in seen:
                    yield (
                        f"duplicate action_id {action_id!r} in the block "
                        f"[json-pointer:{pointer}/elements/{i}/action_id]"
                    )
                seen.add(action_id)


def _model(block: dict[str, Any], pointer: str) -> Iterator[str]:
    """slack_sdk's own validators, run through ``to_dict`` (recursive)."""
    try:
        parsed = Block.parse(block)
        if parsed is None:
            yield f"unsupported type: {block.get('type')!r} [json-pointer:{pointer}/type]"
            return
        parsed.to_dict()
    except _MODEL_ERRORS as exc:
        yield f"{exc} [json-pointer:{pointer}]"


def block_errors(
    blocks: Any, surface: Surface = Surface.MESSAGE, *, root: str = "/blocks"
) -> list[str]:
    """Every reason Slack would refuse ``blocks`` on ``surface``; empty when valid."""
    if not isinstance(blocks, list):
        return [f"must be an array of blocks [json-pointer:{root}]"]
    errors: list[str] = []
    limit = _MAX_BLOCKS[surface]
    if len(blocks) > limit:
        errors.append(f"no more than {limit} items allowed [json-pointer:{root}]")
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        pointer = f"{root}/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(f"must be a block object with a type [json-pointer:{pointer}]")
            continue
        errors += _model(block, pointer)
        errors += _layout(block, pointer)
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if block_id in block_ids:
                errors.append(f"duplicate block_id {block_id!r} [json-pointer:{pointer}/block_id]")
            block_ids.add(block_id)
    return errors


def view_errors(view: dict[str, Any]) -> list[str]:
    """A modal's or the Home tab's view: slack_sdk's ``View`` validators (title and buttons
    ≤ 24, private_metadata ≤ 3000, callback_id ≤ 255, 1 to 100 blocks) plus every block."""
    surface = Surface.HOME if view.get("type") == "home" else Surface.MODAL
    errors = block_errors(view.get("blocks", []), surface, root="/view/blocks")
    keys = ("type", "title", "submit", "close", "callback_id", "private_metadata")
    fields: dict[str, Any] = {k: view[k] for k in keys if k in view}
    if surface is Surface.MODAL and "title" not in view:
        errors.append("missing required field: title [json-pointer:/view]")
    try:
        model = View(**fields)
        model.blocks = None  # type: ignore[assignment]  # counted above, per surface
        model.validate_json()
    except _MODEL_ERRORS as exc:
        errors.append(f"{exc} [json-pointer:/view]")
    return errors


def check_blocks(blocks: Any, surface: Surface = Surface.MESSAGE) -> list[dict[str, Any]]:
    """``blocks`` unchanged when Slack would accept them on ``surface``; else InvalidBlocksError."""
    errors = block_errors(blocks, surface)
    if errors:
        raise InvalidBlocksError(errors)
    assert isinstance(blocks, list)
    return blocks
