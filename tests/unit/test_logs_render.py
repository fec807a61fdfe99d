"""`/dhanam logs` rendering (commands.logs.render): levels, the headline, Slack's limits and
the file, the console link."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest

from commands.logs.render import (
    INLINE_SECTIONS,
    LINE_MAX,
    LINK_MAX,
    console_url,
    headline,
    level_counts,
    level_of,
    logs_reply,
)
from commands.render import MESSAGE_TEXT_MAX, SECTION_TEXT_MAX
from commands.requests import LogsRequest
from integrations.aws.cloudwatch_logs import AwsLogs, LogEvent, LogSearch
from sandbox.block_kit import check_blocks

END = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
START = END - timedelta(hours=2)
LOGS = AwsLogs(group="/ecs/dhanam-api", region=None, stream_prefix="api")


def search(messages: list[str], *, complete: bool = True) -> LogSearch:
    events = [
        LogEvent(at=END - timedelta(seconds=i), stream="api/api/t1", message=m)
        for i, m in enumerate(messages)
    ]
    return LogSearch(events=events, pages=1, complete=complete, searched_from=START)


def request(**kwargs: object) -> LogsRequest:
    return LogsRequest(service="api", env="production", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ('{"level":"error","msg":"x"}', "ERROR"),
        ('{"level":40,"msg":"pino warn"}', "WARN"),
        ('{"severity":"INFO"}', "INFO"),
        ('{"levelname":"WARNING"}', "WARN"),
        ("ERROR prisma: connection failed", "ERROR"),
        ("[warn] slow", "WARN"),
        ("2026-12-05T10:00:00Z INFO started", "INFO"),
        ("level=error msg=boom", "ERROR"),
        ("FATAL out of memory", "ERROR"),
        ('{"level":"debug"}', None),
        ("DEBUG noisy", None),
        ("GET /health 200", None),
        ("the ERROR budget is fine", None),  # not leading
        ("{not json", None),
    ],
)
def test_level_of(line: str, level: str | None) -> None:
    assert level_of(line) == level


def test_level_counts() -> None:
    counts = level_counts(["ERROR a", "ERROR b", '{"level":"warn"}', "plain"])
    assert counts == {"ERROR": 2, "WARN": 1}


def test_headline_echoes_the_window_and_filter() -> None:
    assert headline(request(), 3) == "api · production · last 15 min · 3 lines (newest first)"
    assert (
        headline(request(since=timedelta(hours=2), grep="time out"), 1)
        == 'api · production · last 2 h · matching "time out" · 1 line (newest first)'
    )
    moment = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
    assert headline(request(since=moment), 0) == (
        "api · production · since 2026-12-05 09:30 UTC · no lines"
    )


def test_console_url_is_the_log_events_view_of_the_same_query() -> None:
    url = console_url(LOGS, "us-east-1", START, END, 'say "hi" & <bye>')
    base, fragment = url.split("#", 1)
    assert base == "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
    assert fragment.startswith("logsV2:log-groups/log-group/$252Fecs$252Fdhanam-api/log-events$3F")
    assert "%" not in fragment  # the console's fragment writes percent signs as $
    assert " " not in url
    assert "<" not in url
    assert ">" not in url
    assert "|" not in url  # would end a Slack link label
    query = unquote(unquote(fragment.split("$3F", 1)[1].replace("$", "%")))
    start, end = int(START.timestamp() * 1000), int(END.timestamp() * 1000)
    assert query == f'filterPattern="say \\"hi\\" & <bye>"&start={start}&end={end}'
    other = AwsLogs(group="/g", region="eu-west-1", stream_prefix=None)
    assert console_url(other, "us-east-1", START, END, None).startswith(
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#"
    )


def test_what_fits_stays_inline_with_no_file() -> None:
    lines = [f"INFO request {i}" for i in range(50)]
    reply = logs_reply(request(), search(lines), LOGS, "us-east-1", start=START, end=END)
    assert reply.file is None
    assert reply.inline == 50
    assert reply.text == "api · production · last 15 min · 50 lines (newest first)"
    text = json.dumps(reply.blocks)
    assert "INFO 50" in text
    assert "request 0" in text
    assert "request 49" in text


def test_past_the_limits_the_newest_stay_inline_and_the_file_holds_every_line() -> None:
    lines = [f"ERROR line {i} " + "x" * 120 for i in range(500)]
    reply = logs_reply(request(limit=500), search(lines), LOGS, "us-east-1", start=START, end=END)
    assert reply.file is not None
    sections = [b for b in reply.blocks if b["type"] == "section" and "```" in b["text"]["text"]]
    assert 1 <= len(sections) <= INLINE_SECTIONS
    assert all(len(b["text"]["text"]) <= SECTION_TEXT_MAX for b in sections)
    assert len(json.dumps(reply.blocks)) < MESSAGE_TEXT_MAX // 2
    assert 0 < reply.inline < 500
    assert "line 0 " in sections[0]["text"]["text"]  # the newest first
    assert f"…and {500 - reply.inline} older lines" in json.dumps(reply.blocks, ensure_ascii=False)
    content = reply.file.content.splitlines()
    assert len(content) == 500
    assert content[0].startswith("2026-12-05T12:00:00.000Z  api/api/t1  ERROR line 0 ")
    assert reply.file.filename == "api-production-logs-20261205T120000Z.txt"


def test_a_line_too_long_inline_is_cut_and_whole_in_the_file() -> None:
    long = "WARN " + "y" * (LINE_MAX * 2)
    reply = logs_reply(request(), search([long]), LOGS, "us-east-1", start=START, end=END)
    assert reply.file is not None
    assert long in reply.file.content
    assert "…" in json.dumps(reply.blocks, ensure_ascii=False)
    assert "Long lines are cut here" in json.dumps(reply.blocks)


def test_escaping_grows_text_but_sections_stay_within_limits() -> None:
    lines = ["&<>" * 160 for _ in range(100)]  # 480 characters, 2,400 once escaped
    reply = logs_reply(request(limit=100), search(lines), LOGS, "us-east-1", start=START, end=END)
    assert all(
        len(b["text"]["text"]) <= SECTION_TEXT_MAX for b in reply.blocks if b["type"] == "section"
    )
    assert reply.file is not None


def test_secrets_are_masked_inline_and_in_the_file() -> None:
    lines = ["INFO token=abcd1234efgh5678"] + [f"INFO {i} " + "z" * 200 for i in range(200)]
    reply = logs_reply(request(limit=201), search(lines), LOGS, "us-east-1", start=START, end=END)
    assert reply.file is not None
    assert "abcd1234efgh5678" not in json.dumps(reply.blocks)
    assert "abcd1234efgh5678" not in reply.file.content
    assert "token=[redacted]" in reply.file.content


def test_nothing_found_and_an_incomplete_search_say_so() -> None:
    reply = logs_reply(
        request(grep="nope"), search([], complete=False), LOGS, "us-east-1", start=START, end=END
    )
    text = json.dumps(reply.blocks)
    assert reply.text == 'api · production · last 15 min · matching "nope" · no lines'
    assert "Nothing logged in this window matching it." in text
    assert "The search stopped early" in text
    assert "lines older than 10:00:00 UTC may be missing" in text


@pytest.mark.parametrize(
    "grep",
    ["é" * 400, "x" * 3990, '"&<>|' * 700, "connection reset by peer"],
    ids=["non-ascii", "very-long", "escaped-and-quoted", "ordinary"],
)
def test_every_block_stays_within_slacks_limits_whatever_the_grep(grep: str) -> None:
    lines = [f"ERROR {grep} at {i}" for i in range(20)]
    for found in (search(lines), search([])):
        reply = logs_reply(request(grep=grep), found, LOGS, "us-east-1", start=START, end=END)
        assert check_blocks(reply.blocks) == reply.blocks  # raises InvalidBlocksError if not
        link = json.dumps(reply.blocks[1], ensure_ascii=False)
        assert "console.aws.amazon.com" in link
        full = console_url(LOGS, "us-east-1", START, END, grep)
        if len(full) > LINK_MAX:
            assert "filter not included: too long" in link
            assert "filterPattern" not in link
        else:
            assert full in link
            assert "filter not included" not in link


def test_a_non_ascii_grep_is_in_the_console_link_as_the_console_encodes_it() -> None:
    url = console_url(LOGS, "us-east-1", START, END, "café")
    # the console's own links encode a filter twice: `"` is $2522, `é` is $25C3$25A9
    assert "filterPattern$3D$2522caf$25C3$25A9$2522$26start" in url
    query = unquote(unquote(url.split("$3F", 1)[1].replace("$", "%")))
    assert query.startswith('filterPattern="café"&start=')
