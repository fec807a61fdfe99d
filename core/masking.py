"""Other programs' log lines made safe to show in Slack: secrets masked, then inert text.

`mask_lines` masks what looks like a secret before anything reaches Slack (a message, a file):
the shapes of core.redaction (Slack tokens, AWS access key ids, `user:PASSWORD@` in URLs,
`password=`/`secret=`/`token=`/`aws_secret_access_key=` and similar key-values, JSON or not,
`Bearer …`/`Basic …` credentials, and the bot's own secret values), plus PEM private key blocks
(`-----BEGIN … PRIVATE KEY-----` to its END line, also when the block spans several lines or
log events: the lines are given oldest first and a block left open masks what follows until
its END). A block whose BEGIN is not among the lines (cut off by `--limit`, or written before
the window) is masked from its END back: the run of base64-block-shaped lines just above an
END line with no BEGIN, and the base64 part of the END line itself. A line that is nothing
but 64 base64 characters (PEM's line width) is masked as key material wherever it is, so a
block split across calls of `mask_lines` is covered too.

`LineMasker` does the same for lines given page by page (a log tail): `LineMasker().mask(page)`
on each page in order, oldest first; a block left open on one page masks the next page's lines
until its END. Masking from an END back only reaches the lines of the same `mask` call (lines
already shown cannot be taken back); the 64-character rule covers the earlier pages.

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
_BODY = re.compile(r"\s*[A-Za-z0-9+/]{16,}={0,2}\s*")  # a line of a PEM block's base64 body
_BODY_TAIL = re.compile(r"[A-Za-z0-9+/]+={0,2}\s*$")  # base64 before an END on its line
_PEM_WIDTH = re.compile(r"\s*[A-Za-z0-9+/]{64}\s*")  # a whole 64-character PEM body line
BACKTICK_STANDIN = "\u02cb"  # looks like a backtick, closes no code block

__all__ = ["PRIVATE_KEY", "REDACTED", "LineMasker", "code_block", "mask", "mask_lines"]


class LineMasker:
    """Masks lines given in order, oldest first, over several calls (see the module doc):
    a private key block left open by one call's lines masks the next call's until its END."""

    def __init__(self) -> None:
        self.in_key = False

    def mask(self, lines: Iterable[str]) -> list[str]:
        """Each line with its secrets masked, in the order given (oldest first)."""
        masked: list[str] = []
        body: list[int] = []  # indices of the base64-shaped lines just above this one
        for line in lines:
            was_open = self.in_key
            out, self.in_key, orphan_end = _mask_keys(line, self.in_key)
            if orphan_end:
                for index in body:
                    masked[index] = PRIVATE_KEY
            if not was_open and not self.in_key and out == line and _BODY.fullmatch(line):
                body.append(len(masked))
                if _PEM_WIDTH.fullmatch(line):
                    out = PRIVATE_KEY
            elif line.strip():
                body = []
            masked.append(redact_text(out))
        return masked


def mask_lines(lines: Iterable[str]) -> list[str]:
    """Each line with its secrets masked (see the module doc); give them oldest first.
    Stateless between calls: use `LineMasker` for lines that come page by page."""
    return LineMasker().mask(lines)


def mask(text: str) -> str:
    """One text (one or more lines) with its secrets masked."""
    return "\n".join(mask_lines(text.split("\n")))


def _mask_keys(line: str, in_key: bool) -> tuple[str, bool, bool]:
    """`line` with PEM private key material replaced; whether a block is still open after it;
    whether it holds an END with no BEGIN before it (its body is on the lines above)."""
    out: list[str] = []
    rest = line
    orphan_end = False
    while rest:
        if in_key:
            end = _END.search(rest)
            if end is None:
                if not out or out[-1] != PRIVATE_KEY:
                    out.append(PRIVATE_KEY)
                return "".join(out), True, orphan_end
            if not out or out[-1] != PRIVATE_KEY:
                out.append(PRIVATE_KEY)
            rest, in_key = rest[end.end() :], False
            continue
        begin = _BEGIN.search(rest)
        end = _END.search(rest)
        if end is not None and (begin is None or end.start() < begin.start()):
            # The END of a block whose BEGIN is not here: its base64 before the END goes too.
            before = rest[: end.start()]
            tail = _BODY_TAIL.search(before)
            kept = before if tail is None else before[: tail.start()]
            out.append(kept)
            out.append(PRIVATE_KEY)
            rest, orphan_end = rest[end.end() :], True
            continue
        if begin is None:
            out.append(rest)
            break
        out.append(rest[: begin.start()])
        out.append(PRIVATE_KEY)
        rest, in_key = rest[begin.end() :], True
    return "".join(out), in_key, orphan_end


def code_block(lines: Iterable[str]) -> str:
    """Lines (already masked) as one mrkdwn code block of inert text."""
    body = "\n".join(inert(line).replace("`", BACKTICK_STANDIN) for line in lines)
    return f"```\n{body}\n```"
