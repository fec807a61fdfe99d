"""Pure Block Kit builders for help and errors: models in, dicts out, no I/O."""

from __future__ import annotations

from typing import Any

from commands.catalog import COMMANDS, CommandSpec

Block = dict[str, Any]


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(*texts: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": t} for t in texts]}


def help_blocks(slash: str, topic: str | None = None) -> list[Block]:
    if topic is not None:
        return _topic_blocks(slash, COMMANDS[topic])
    lines = [f"`{slash} {spec.usage}`\n{spec.summary}" for spec in COMMANDS.values()]
    return [
        {"type": "header", "text": {"type": "plain_text", "text": "Dhanam ChatOps"}},
        _section(
            "Run production from Slack. Risky commands (deploy, rollback, scale, db restore) "
            "post an approval card; a second engineer approves before anything changes."
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
    blocks = [_section(f":warning: {message}")]
    notes = ["Nothing was changed."] if nothing_changed else []
    if usage:
        notes.insert(0, f"Usage: `{slash} {usage}`")
    else:
        notes.append(f"See `{slash} help`.")
    blocks.append(_context(*notes))
    return blocks
