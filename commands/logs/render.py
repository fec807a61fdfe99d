"""`/dhanam logs`: what was found, as a reply (pure: models in, text and blocks out).

The reply echoes the window and filter, counts the lines by level, shows the lines (masked,
inert) in code blocks and links to the same query in the CloudWatch console. What does not fit
inline (more than `INLINE_SECTIONS` sections of at most 3,000 characters, or a line longer than
`LINE_MAX`) goes up as a file holding every line in full, masked: `LogsReply.file`.

Every block stays within Slack's limits whatever the `--grep` text: the headline section is
clipped, and the console link carries the filter only while the link stays within `LINK_MAX`
characters (the console's fragment encodes the filter twice, so a non-ASCII character costs
up to 20); a longer one links to the same window without the filter and says so.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from commands.render import SECTION_TEXT_MAX, Block, clip
from commands.requests import LogsRequest
from core.masking import code_block, mask_lines
from core.text import duration, inert, plural
from integrations.aws.cloudwatch_logs import AwsLogs, LogEvent, LogSearch, literal_pattern

LINK_MAX = 2000  # a console link longer than this leaves the filter out
CONTEXT_TEXT_MAX = 3000  # a context block's text element
INLINE_SECTIONS = 3  # code blocks shown inline, each at most SECTION_TEXT_MAX characters
LINE_MAX = 500  # a longer line is clipped inline (and the full text goes up as a file)
_FENCE = len("```\n\n```")
LEVELS = ("ERROR", "WARN", "INFO")
_ALIASES = {
    "FATAL": "ERROR",
    "CRITICAL": "ERROR",
    "ERR": "ERROR",
    "ERROR": "ERROR",
    "WARNING": "WARN",
    "WARN": "WARN",
    "INFO": "INFO",
    "NOTICE": "INFO",
}
_PINO = {60: "ERROR", 50: "ERROR", 40: "WARN", 30: "INFO"}  # pino's numeric levels
# A leading level word: `ERROR …`, `[warn] …`, `2026-12-05T10:00:00Z INFO …`, `level=error`.
_LEADING = re.compile(
    r"^\s*(?:\S*\d{2}:\d{2}:\d{2}\S*\s+)?(?:level=)?[\[(]?"
    r"(FATAL|CRITICAL|ERROR|ERR|WARNING|WARN|INFO|NOTICE)\b[\])]?:?",
    re.I,
)


def level_of(message: str) -> str | None:
    """ERROR, WARN or INFO when the line says so (a JSON `level`/`severity` field, a leading
    level word), else None (DEBUG and TRACE are not counted)."""
    text = message.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            raw = parsed.get("level", parsed.get("severity", parsed.get("levelname")))
            if isinstance(raw, int):
                return _PINO.get(raw)
            if isinstance(raw, str):
                return _ALIASES.get(raw.upper())
            return None
    found = _LEADING.match(text)
    return _ALIASES[found[1].upper()] if found else None


def level_counts(messages: list[str]) -> Counter[str]:
    return Counter(level for m in messages if (level := level_of(m)) is not None)


def _aws_fragment(value: str) -> str:
    """The console's fragment encoding: percent-encoded twice, then `%` written as `$`. This is
    the console's own format (a log group `/ecs/api` is `$252Fecs$252Fapi`, a filter `"x"` is
    `$2522x$2522` in the links it makes), not an accident: once-encoded values do not open."""
    return quote(quote(value, safe=""), safe="").replace("%", "$")


def console_url(
    logs: AwsLogs, region: str, start: datetime, end: datetime, grep: str | None
) -> str:
    """The CloudWatch console's log events view of the group over [start, end] with the same
    filter pattern as the query."""
    region = logs.region or region
    query = f"start={int(start.timestamp() * 1000)}&end={int(end.timestamp() * 1000)}"
    if grep:
        query = f"filterPattern={quote(literal_pattern(grep), safe='')}&{query}"
    fragment = (
        f"logsV2:log-groups/log-group/{_aws_fragment(logs.group)}/log-events"
        + quote("?", safe="").replace("%", "$")
        + quote(query, safe="").replace("%", "$")
    )
    return f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#{fragment}"


def window_words(since: timedelta | datetime) -> str:
    if isinstance(since, timedelta):
        return f"last {duration(since)}"
    return f"since {since:%Y-%m-%d %H:%M} UTC"


def headline(request: LogsRequest, shown: int) -> str:
    """`api · production · last 2h · matching "timeout" · 37 lines (newest first)` (plain)."""
    parts = [request.service, request.env, window_words(request.since)]
    if request.grep:
        parts.append(f'matching "{request.grep}"')
    parts.append(f"{plural(shown, 'line')} (newest first)" if shown else "no lines")
    return " · ".join(parts)


@dataclass(frozen=True)
class LogFile:
    filename: str
    title: str
    content: str  # every line, masked, newest first


@dataclass(frozen=True)
class LogsReply:
    text: str  # the notification text: the headline
    blocks: list[Block]
    file: LogFile | None  # set when not everything fits inline
    inline: int  # lines shown inline


def _stamp(at: datetime, with_date: bool) -> str:
    return f"{at:%m-%d %H:%M:%S}" if with_date else f"{at:%H:%M:%S}"


def logs_reply(
    request: LogsRequest,
    search: LogSearch,
    logs: AwsLogs,
    region: str,
    *,
    start: datetime,
    end: datetime,
) -> LogsReply:
    """The reply to `request` for what `search` found (see the module doc)."""
    events = search.events
    # Masked oldest first (a private key block spans lines in the order they were written).
    masked = list(reversed(mask_lines(e.message for e in reversed(events))))
    title = headline(request, len(events))
    blocks: list[Block] = [_section(f"*{clip(inert(title), SECTION_TEXT_MAX - 2)}*")]
    counts = level_counts(masked)
    facts = [f"{level} {counts[level]}" for level in LEVELS if counts[level]]
    blocks.append(
        _context(_with_link(facts, logs, region, start=start, end=end, grep=request.grep))
    )
    if not search.complete:
        blocks.append(_context(_incomplete(search)))
    if not events:
        blocks.append(
            _context("Nothing logged in this window" + (" matching it." if request.grep else "."))
        )
        return LogsReply(inert(title), blocks, None, 0)
    with_date = end - start > timedelta(days=1)
    lines = [f"{_stamp(e.at, with_date)}  {m}" for e, m in zip(events, masked, strict=True)]
    clipped = [clip(line, LINE_MAX) for line in lines]
    chunks, hidden = _pack(clipped)
    blocks.extend(_section(code_block(chunk)) for chunk in chunks)
    shown = len(events) - hidden
    needs_file = hidden > 0 or any(len(line) > LINE_MAX for line in lines)
    file = _file(request, events, masked, end) if needs_file else None
    if hidden:
        blocks.append(_context(f"…and {plural(hidden, 'older line')}: every line is in the file."))
    elif file is not None:
        blocks.append(_context("Long lines are cut here: every line is whole in the file."))
    return LogsReply(inert(title), blocks, file, shown)


def _with_link(
    facts: list[str],
    logs: AwsLogs,
    region: str,
    *,
    start: datetime,
    end: datetime,
    grep: str | None,
) -> str:
    """The level counts and the console link, within a context element's limit: the link
    leaves the filter out when it would pass LINK_MAX (or the element's limit), and is left
    out when even that does not fit."""
    group = f"(`{inert(logs.group)}`)"
    link = console_url(logs, region, start, end, grep)
    label = "Open in CloudWatch"
    if grep and len(link) > LINK_MAX:
        link = console_url(logs, region, start, end, None)
        label = "Open in CloudWatch (filter not included: too long)"
    text = " · ".join([*facts, f"<{link}|{label}> {group}"])
    if len(text) > CONTEXT_TEXT_MAX or len(link) > LINK_MAX:
        text = clip(" · ".join([*facts, f"CloudWatch log group {group}"]), CONTEXT_TEXT_MAX)
    return text


def _pack(lines: list[str]) -> tuple[list[list[str]], int]:
    """Whole lines (an event may hold several) into at most INLINE_SECTIONS code blocks whose
    escaped text fits a section (`&` grows into `&amp;`, so a line is measured escaped);
    returns the chunks and how many lines did not fit."""
    room = SECTION_TEXT_MAX - _FENCE
    chunks: list[list[str]] = []
    size = 0
    for index, line in enumerate(lines):
        needed = len(inert(line)) + 1
        if not chunks or size + needed > room:
            if len(chunks) == INLINE_SECTIONS:
                return chunks, len(lines) - index
            chunks.append([])
            size = 0
        chunks[-1].append(line)
        size += needed
    return chunks, 0


def _file(
    request: LogsRequest, events: list[LogEvent], masked: list[str], end: datetime
) -> LogFile:
    body = "\n".join(
        f"{e.at:%Y-%m-%dT%H:%M:%S}.{e.at.microsecond // 1000:03d}Z  {e.stream}  {m}"
        for e, m in zip(events, masked, strict=True)
    )
    return LogFile(
        filename=f"{request.service}-{request.env}-logs-{end:%Y%m%dT%H%M%SZ}.txt",
        title=headline(request, len(events)),
        content=body + "\n",
    )


def _incomplete(search: LogSearch) -> str:
    return (
        f"The search stopped early ({plural(search.pages, 'CloudWatch call')}, or out of "
        f"time): lines older than {search.searched_from:%H:%M:%S} UTC may be missing. "
        "Narrow it with --since or --grep."
    )


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}
