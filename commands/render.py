"""Pure Block Kit builders for help and errors: models in, dicts out, no I/O."""

from __future__ import annotations

from typing import Any

from commands.catalog import COMMANDS, CommandSpec
from core.text import NOTHING_CHANGED, without_nothing_changed

Block = dict[str, Any]

# Slack's Block Kit limits (docs.slack.dev/reference/block-kit), which the renderers keep to:
# Slack refuses the whole message (`invalid_blocks`) when one is exceeded.
MESSAGE_MAX_BLOCKS = 50
VIEW_MAX_BLOCKS = 100  # a modal or the Home tab
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
HEADER_TEXT_MAX = 150
BUTTON_TEXT_MAX = 75
CONFIRM_TEXT_MAX = 300
MESSAGE_TEXT_MAX = 40_000  # chat.postMessage answers msg_too_long beyond it


def clip(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters; a cut is marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def more(hidden: int, noun: str = "more") -> str:
    return f"…and {hidden} {noun}"


def pack_lines(
    lines: list[str],
    *,
    max_chunks: int,
    limit: int = SECTION_TEXT_MAX,
    max_lines: int | None = None,
) -> tuple[list[str], int]:
    """Whole lines grouped into at most ``max_chunks`` texts of at most ``limit`` characters
    (and ``max_lines`` lines) each, in order; returns the texts and how many lines did not
    fit. A line longer than ``limit`` on its own is clipped."""
    chunks: list[list[str]] = []
    size = 0
    for shown, raw in enumerate(lines):
        line = clip(raw, limit)
        full = bool(chunks) and (
            size + 1 + len(line) > limit or (max_lines is not None and len(chunks[-1]) >= max_lines)
        )
        if not chunks or full:
            if len(chunks) == max_chunks:
                return ["\n".join(c) for c in chunks], len(lines) - shown
            chunks.append([])
            size = -1
        chunks[-1].append(line)
        size += 1 + len(line)
    return ["\n".join(c) for c in chunks], 0


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_TEXT_MAX)}}


def _context(*texts: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": t} for t in texts]}


def help_blocks(
    slash: str, topic: str | None = None, tasks: dict[str, list[str]] | None = None
) -> list[Block]:
    """Every command, or one in detail; `help run` also lists each service's tasks."""
    if topic is not None:
        blocks = _topic_blocks(slash, COMMANDS[topic])
        if topic == "run" and tasks is not None:
            listed = [
                f"• {svc}: {', '.join(names)}" for svc, names in sorted(tasks.items()) if names
            ]
            text = "\n".join(listed) if listed else "No service has tasks configured."
            blocks.insert(1, _section(f"*Tasks*\n{text}"))
        return blocks
    lines = [f"`{slash} {spec.usage}`\n{spec.summary}" for spec in COMMANDS.values()]
    return [
        {"type": "header", "text": {"type": "plain_text", "text": "Dhanam ChatOps"}},
        _section(
            "Run production from Slack. Risky commands (deploy, rollback, scale, db restore, "
            "run, dr activate) post an approval card; a second engineer approves before "
            "anything changes."
        ),
        {"type": "divider"},
        *(_section(line) for line in lines),
        _context(f"More on one command: `{slash} help deploy`"),
    ]


def _topic_blocks(slash: str, spec: CommandSpec) -> list[Block]:
    examples = "\n".join(f"`{slash} {e}`" for e in spec.examples)
    text = f"*`{slash} {spec.usage}`*\n{spec.summary}"
    if spec.notes:
        text += f"\n{spec.notes}"
    blocks = [_section(text), _section(f"*Examples*\n{examples}")]
    if spec.risky:
        blocks.append(
            _context(
                "Needs approval where the environment requires it. "
                "`--break-glass` overrides a freeze or lock and needs one more approver."
            )
        )
    return blocks


def help_text(slash: str, topic: str | None = None) -> str:
    """The plain-text fallback Slack shows in notifications."""
    if topic is None:
        return f"Dhanam ChatOps — commands: {', '.join(COMMANDS)}. Try `{slash} help deploy`."
    spec = COMMANDS[topic]
    return f"{slash} {spec.usage} — {spec.summary}"


def error_blocks(
    slash: str, message: str, usage: str | None = None, *, nothing_changed: bool = True
) -> list[Block]:
    said = without_nothing_changed(message)
    if said != message:  # the message promised it: said once, in the same place as the rest
        message, nothing_changed = said, True
    # Always in this order: the problem, then what to type instead, then "Nothing was
    # changed." as the message's last sentence — one context line, whichever the error.
    blocks = [_section(f":warning: {message}")]
    notes = [f"Usage: `{slash} {usage}`" if usage else f"See `{slash} help`."]
    if nothing_changed:
        notes.append(NOTHING_CHANGED)
    blocks.append(_context("\n".join(notes)))
    return blocks
