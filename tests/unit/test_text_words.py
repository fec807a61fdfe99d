"""The words people read (core/text.py): counts, durations, enum values, refusals, plain_text."""

from __future__ import annotations

from datetime import timedelta

import pytest

from approvals.models import State
from commands.alarms.render import reminder_text
from commands.incidents.render import card_header, topic
from commands.operations.state import _audit_line
from commands.render import error_blocks
from core.text import (
    duration,
    nothing_changed,
    plain,
    plural,
    squeeze,
    user_ids,
    without_nothing_changed,
    words,
)
from tests.unit.test_incident_pure import incident


@pytest.mark.parametrize(
    ("n", "expected"),
    [(0, "0 approvals"), (1, "1 approval"), (2, "2 approvals"), (12, "12 approvals")],
)
def test_plural_agrees_with_the_count(n: int, expected: str) -> None:
    assert plural(n, "approval") == expected


def test_plural_irregular_and_noun_only() -> None:
    assert plural(1, "entry", "entries") == "1 entry"
    assert plural(3, "entry", "entries") == "3 entries"
    assert plural(2, "person") == "2 people"
    assert plural(2, "freeze window") == "2 freeze windows"
    assert plural(2, "pass") == "2 passes"
    assert plural(1, "approval", count=False) == "approval"
    assert plural(5, "approval", count=False) == "approvals"


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0 s"),
        (1, "1 s"),
        (45, "45 s"),
        (59, "59 s"),
        (60, "1 min"),
        (61, "1 min 1 s"),
        (90, "1 min 30 s"),
        (302, "5 min 2 s"),
        (599, "9 min 59 s"),
        (600, "10 min"),
        (725, "12 min"),
        (3599, "59 min"),
        (3600, "1 h"),
        (3660, "1 h 1 min"),
        (7500, "2 h 5 min"),
        (86399, "23 h 59 min"),
        (86400, "1 d"),
        (3 * 86400 + 4 * 3600 + 59, "3 d 4 h"),
        (40 * 86400, "40 d"),
    ],
)
def test_duration_reads_naturally_at_every_scale(seconds: int, expected: str) -> None:
    assert duration(timedelta(seconds=seconds)) == expected
    assert duration(seconds + 0.9) == expected  # truncated, never rounded up to "60 min"


def test_duration_never_negative_never_0m() -> None:
    assert duration(timedelta(seconds=-5)) == "0 s"
    assert duration(timedelta(milliseconds=400)) == "0 s"
    for s in range(0, 4 * 86400, 37):
        text = duration(s)
        assert not text.startswith("0 ") or s < 1, (s, text)
        assert "  " not in text


def test_words_turn_enum_values_into_words() -> None:
    assert words("auto_approved") == "ran without approval"
    assert words("in_doubt") == "in doubt"
    assert words("not_approver") == "not an approver"
    assert words("INSUFFICIENT_DATA") == "INSUFFICIENT DATA"
    assert words("requested") == "requested"

    assert words(State.IN_DOUBT) == "in doubt"
    assert words(State.SUCCEEDED) == "succeeded"


@pytest.mark.parametrize(
    ("refusal", "expected"),
    [
        ("x is not locked — nothing was changed.", "x is not locked. Nothing was changed."),
        ("x is not locked — nothing was changed", "x is not locked. Nothing was changed."),
        (
            "incident `i` is already resolved — nothing changed.",
            "incident `i` is already resolved. Nothing was changed.",
        ),
        ("The store is down", "The store is down. Nothing was changed."),
        ("Not executed. Nothing was changed.", "Not executed. Nothing was changed."),
        (
            "This request has expired — nothing was changed. Ask again if it's still needed.",
            "This request has expired. Ask again if it's still needed. Nothing was changed.",
        ),
    ],
)
def test_nothing_changed_is_the_last_sentence(refusal: str, expected: str) -> None:
    assert nothing_changed(refusal) == expected
    assert nothing_changed(expected) == expected  # said once
    assert nothing_changed(without_nothing_changed(expected)) == expected
    assert "nothing" not in without_nothing_changed(expected).lower()


def test_nothing_changed_in_a_place_is_not_the_promise() -> None:
    assert without_nothing_changed("Nothing was changed in PagerDuty.") == (
        "Nothing was changed in PagerDuty."
    )


def test_squeeze_double_spaces_keeps_indentation() -> None:
    assert squeeze("a  b   c\n  • d  e") == "a b c\n  • d e"


def test_plain_shows_names_not_tokens() -> None:
    names = {"U1": "bob"}
    assert user_ids("x <@U1> y <@U2|carol> <@U1>") == ["U1", "U2"]
    assert plain("db down, paging <@U1>", names) == "db down, paging @bob"
    assert plain("<@U2|carol> in <#C1|deploys>", {}) == "@carol in #deploys"
    assert plain("<!here> <!subteam^S1|@sre> <https://x.example|the doc>", {}) == (
        "@here @sre the doc"
    )
    assert plain("a <b & c", {}) == "a <b & c"  # as typed: nothing else is markup
    assert plain("no markup at all", {}) == "no markup at all"
    assert plain("ask <@U9>", names) is None  # no name: the caller uses mrkdwn instead


# -- renderers' texts that changed (issue 14) -------------------------------------------------


def test_incident_durations_and_header_names() -> None:
    inc = incident(title="db down, paging <@U0BOB>")
    start = inc.started_at
    assert inc.duration(start + timedelta(seconds=42)) == "42 s"  # not "0m"
    assert inc.duration(start + timedelta(seconds=60)) == "1 min"
    assert inc.duration(start + timedelta(seconds=7500)) == "2 h 5 min"
    header = card_header(inc, {"U0BOB": "bob"})
    assert header["type"] == "header"
    assert header["text"]["text"].endswith("db down, paging @bob — investigating")
    unknown = card_header(inc, {})  # no name: mrkdwn, where Slack shows the mention
    assert unknown["type"] == "section"
    assert unknown["text"] == {
        "type": "mrkdwn",
        "text": "*SEV1 db down, paging <@U0BOB> — investigating*",
    }
    assert topic(inc, {"U0BOB": "bob"}).endswith("IC @U0ALICE · db down, paging @bob")
    named_ic = topic(inc, {"U0BOB": "bob", "U0ALICE": "alice"})
    assert named_ic.endswith("IC @alice · db down, paging @bob")  # setTopic does not format


def test_alarm_reminder_reads_the_duration() -> None:
    assert reminder_text("api-5xx", timedelta(seconds=3600)) == (
        ":alarm_clock: *api-5xx* is still in ALARM — firing for 1 h."
    )
    assert reminder_text("api-5xx", timedelta(seconds=90)).endswith("firing for 1 min 30 s.")


def test_error_blocks_say_nothing_changed_once_at_the_end() -> None:
    blocks = error_blocks("/dhanam", "x is not locked — nothing was changed.")
    assert blocks[0]["text"]["text"] == ":warning: x is not locked"
    assert [e["text"] for e in blocks[1]["elements"]] == [
        "See `/dhanam help`.\nNothing was changed."
    ]


def test_error_blocks_put_nothing_changed_last_with_or_without_usage() -> None:
    with_usage = error_blocks("/dhanam", "unknown env `prdo`", "deploy SERVICE ENV")
    assert [e["text"] for e in with_usage[1]["elements"]] == [
        "Usage: `/dhanam deploy SERVICE ENV`\nNothing was changed."
    ]
    without = error_blocks("/dhanam", "`lock` is not enabled in this version of the bot")
    assert [e["text"] for e in without[1]["elements"]] == [
        "See `/dhanam help`.\nNothing was changed."
    ]
    no_promise = error_blocks("/dhanam", "the rollout may be half done", nothing_changed=False)
    assert [e["text"] for e in no_promise[1]["elements"]] == ["See `/dhanam help`."]


def test_audit_says_a_staging_run_ran_without_approval() -> None:
    line = _audit_line(
        {
            "event": "auto_approved",
            "title": "Deploy api to staging",
            "env": "staging",
            "user": "U0ALICE",
            "request_id": "0a1b2c",
            "note": "no approval required",
            "at": "2026-11-26T10:00:00+00:00",
        }
    )
    assert line.endswith(
        "*ran without approval* (staging needs none): Deploy api to staging, requested by "
        "<@U0ALICE> `0a1b2c`"
    )
    assert "approved automatically" not in line
    assert "no approval required" not in line
