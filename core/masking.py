"""Other programs' log lines made safe to show in Slack: secrets masked, then inert text.

`mask_lines` masks what looks like a secret before anything reaches Slack (a message, a file):
the shapes of core.redaction (Slack tokens, AWS access key ids, `user:PASSWORD@` in URLs,
`password=`/`secret=`/`token=`/`aws_secret_access_key=` and similar key-values, JSON or not,
`Bearer …`/`Basic …` credentials, and the bot's own secret values), plus PEM private key blocks
(`-----BEGIN … PRIVATE KEY-----` to its END line, also when the block spans several lines or
log events: the lines are given oldest first and a block left open masks what follows until
its END).

`code_block` puts lines inside a Slack ``` block as text only: `&`, `<`, `>` escaped (no
mention, channel ping, date token or link can form), and every backtick replaced by the
modifier letter grave accent (U+02CB), so a line cannot close the block and turn the rest
into mrkdwn. Slack does not auto-link URLs or resolve `@here` inside a code block.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from core.redaction import REDACTED, redact_text
from core.text import inert

PRIVATE_KEY = "[redacted private key]"
_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
BACKTICK_STANDIN = "\u02cb"  # looks like a backtick, closes no code block

__all__ = ["PRIVATE_KEY", "REDACTED", "code_block", "mask", "mask_lines"]


def mask_lines(lines: Iterable[str]) -> list[str]:
    """Each line with its secrets masked (see the module doc); give them oldest first."""
    masked: list[str] = []
    in_key = False
    for line in lines:
        out, in_key = _mask_keys(line, in_key)
        masked.append(redact_text(out))
    return masked


def mask(text: str) -> str:
    """One text (one or more lines) with its secrets masked."""
    return "\n".join(mask_lines(text.split("\n")))


def _mask_keys(line: str, in_key: bool) -> tuple[str, bool]:
    """`line` with PEM private key material replaced; whether a block is still open after it."""
    out: list[str] = []
    rest = line
    while rest:
        if in_key:
            end = _END.search(rest)
            if end is None:
                if not out or out[-1] != PRIVATE_KEY:
                    out.append(PRIVATE_KEY)
                return "".join(out), True
            if not out or out[-1] != PRIVATE_KEY:
                out.append(PRIVATE_KEY)
            rest, in_key = rest[end.end() :], False
            continue
        begin = _BEGIN.search(rest)
        if begin is None:
            out.append(rest)
            break
        out.append(rest[: begin.start()])
        out.append(PRIVATE_KEY)
        rest, in_key = rest[begin.end() :], True
    return "".join(out), in_key


def code_block(lines: Iterable[str]) -> str:
    """Lines (already masked) as one mrkdwn code block of inert text."""
    body = "\n".join(inert(line).replace("`", BACKTICK_STANDIN) for line in lines)
    return f"```\n{body}\n```"
