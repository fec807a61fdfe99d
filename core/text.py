"""User text made inert before the bot echoes it into Slack mrkdwn or a message's text.

Slack's client turns what a user types into markup before the bot sees it: @channel arrives as
``<!channel>``, a mention as ``<@U123>``, a link as ``<https://x|label>``, and a literal ``<``,
``>`` or ``&`` as ``&lt;``, ``&gt;``, ``&amp;``. The parser un-escapes those three entities, so
commands carry the text as typed (``request.reason``, ``incident.title``…). Echoed back as it
is, that text would ping the channel or hide a link behind a label: on a card that a second
engineer approves from, a disguised link or an ``@here`` is the problem.

So every place that puts user-typed text into mrkdwn, a message's ``text``, a topic or a
timeline line passes it through :func:`inert`, Slack's documented escaping
(https://api.slack.com/reference/surfaces/formatting#escaping): ``&`` → ``&amp;``, ``<`` →
``&lt;``, ``>`` → ``&gt;``. Slack shows the literal characters; nothing pings, nothing links.
Mentions the bot builds itself (``mention(user_id)``, ``<#C…>``, ``<!date^…>``) are added
around the escaped text and keep working.

``plain_text`` objects (headers, button labels, option text of plain_text type) are not parsed
for mentions or links: user text goes there as typed — escaping would show ``&lt;`` literally.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta

__all__ = [
    "NOTHING_CHANGED",
    "duration",
    "fit",
    "inert",
    "inert_but_mentions",
    "mentions_as_names",
    "named",
    "nothing_changed",
    "plain",
    "plural",
    "squeeze",
    "uninert",
    "user_ids",
    "without_nothing_changed",
    "words",
]


def inert(text: str) -> str:
    """``text`` (as the user typed it) safe inside mrkdwn: no mention, link or date token."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def uninert(text: str) -> str:
    """The inverse of :func:`inert` (what Slack shows for it); ``&amp;`` last, so that a typed
    ``&lt;`` (escaped to ``&amp;lt;``) comes back as ``&lt;``."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def fit(prefix: str, text: str, limit: int) -> str:
    """``prefix + inert(text)`` within ``limit`` characters, cutting the raw text (never the
    middle of an ``&amp;`` entity) and marking the cut with an ellipsis."""
    whole = prefix + inert(text)
    if len(whole) <= limit:
        return whole
    room = limit - len(prefix) - 1
    if room < 0:
        return prefix[:limit]
    cut = text[:room]
    while len(inert(cut)) > room:
        cut = cut[:-1]
    return prefix + inert(cut) + "…"


# -- words people read ------------------------------------------------------------------------
# One style for every message, card and reply: counts agree with their nouns ("1 approval",
# "2 approvals", never "approval(s)"), durations read as a person says them, enum values become
# words, and a refusal that changed nothing says so once, as its own last sentence.

NOTHING_CHANGED = "Nothing was changed."

_IRREGULAR = {"entry": "entries", "person": "people", "is": "are", "was": "were"}


def plural(n: int, singular: str, irregular: str | None = None, *, count: bool = True) -> str:
    """``"1 approval"``, ``"2 approvals"``, ``"0 approvals"``; ``irregular`` is the plural when
    adding an s is wrong (``plural(3, "entry", "entries")``; a few common ones are known).
    With ``count=False`` only the noun: ``f"{n} pending {plural(n, 'approval', count=False)}"``."""
    if n == 1:
        noun = singular
    elif irregular is not None:
        noun = irregular
    else:
        noun = _IRREGULAR.get(singular) or (
            singular + "es" if singular.endswith(("s", "x", "ch", "sh")) else singular + "s"
        )
    return f"{n} {noun}" if count else noun


def duration(delta: timedelta | float) -> str:
    """A length of time as people say it, two units at most, truncated (never rounded up):

    - under a minute, seconds: ``0 s``, ``45 s``, ``59 s``
    - under ten minutes, minutes and the seconds when there are any: ``1 min``, ``1 min 1 s``,
      ``9 min 59 s`` (short waits — a rollout, a bake — are read to the second)
    - under an hour, whole minutes: ``12 min``, ``59 min``
    - under a day, hours and the minutes when there are any: ``1 h``, ``2 h 5 min``
    - longer, days and the hours when there are any: ``1 d``, ``3 d 4 h``

    Negative lengths (clock skew) read as ``0 s``; never ``0m`` or ``0 min``."""
    seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
    total = max(0, int(seconds))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 10:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


_WORDS = {
    "auto_approved": "ran without approval",
    "in_doubt": "in doubt",
    "not_approver": "not an approver",
    "not_requester": "not the requester",
}


def words(value: object) -> str:
    """An enum value (or a raw identifier such as an audit event) as words people read:
    ``auto_approved`` → ``ran without approval`` (as the card says it), ``in_doubt`` → ``in
    doubt``, ``IN_PROGRESS`` → ``IN PROGRESS`` (the case is kept: CloudWatch's ``ALARM`` stays
    as the console shows it). Accepts a StrEnum member or a plain string."""
    raw = str(getattr(value, "value", value))
    return _WORDS.get(raw, raw.replace("_", " "))


_PROMISE = re.compile(
    r"[\s:;,.\u2014\u2013-]*\bnothing (?:was )?changed\b(?![ \t]+[a-z])[.!]?", re.IGNORECASE
)


def without_nothing_changed(text: str) -> str:
    """``text`` without any "nothing (was) changed" promise in it, wherever it was put."""

    def cut(match: re.Match[str]) -> str:
        rest = text[match.end() :]
        return ". " if rest.strip() and not rest.lstrip().startswith((".", ",", ";")) else ""

    return _PROMISE.sub(cut, text).replace(".  ", ". ").strip()


def nothing_changed(text: str) -> str:
    """A refusal with "Nothing was changed." as its own last sentence — the one place every
    refusal puts it: ``"x is not locked — nothing was changed"`` → ``"x is not locked. Nothing
    was changed."``."""
    body = without_nothing_changed(text).rstrip(" \u2014\u2013-:;,")
    if not body:
        return NOTHING_CHANGED
    if not body.endswith((".", "!", "?", "…")):
        body += "."
    return f"{body} {NOTHING_CHANGED}"


def squeeze(text: str) -> str:
    """Runs of spaces inside each line made one (the indentation and line breaks are kept)."""
    return "\n".join(
        line[: len(line) - len(line.lstrip(" "))] + _SPACES.sub(" ", line.lstrip(" "))
        for line in text.split("\n")
    )


_SPACES = re.compile(r" {2,}")


# -- plain_text: what Slack shows, without the markup -----------------------------------------
# Headers, button labels and plain_text sections are not parsed: a ``<@U123>`` the user typed
# (Slack sends mentions as that token) would show as the raw token. `plain` turns Slack's
# tokens into what the client shows, given the names the bot could find (users.info).

_TOKEN = re.compile(r"<([@#!])([^<>|]*)(?:\|([^<>]*))?>|<([^<>|@#!][^<>|]*)(?:\|([^<>]*))?>")
_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^<>]*)?>")


def user_ids(text: str) -> list[str]:
    """The user ids mentioned in ``text`` (``<@U123>``, ``<@U123|bob>``), in order, once each."""
    return list(dict.fromkeys(_USER.findall(text)))


def plain(text: str, names: Mapping[str, str]) -> str | None:
    """``text`` as Slack would show it, for a plain_text object: ``<@U123>`` → ``@bob`` (from
    ``names``, or the label Slack sent), ``<#C1|deploys>`` → ``#deploys``, ``<!here>`` →
    ``@here``, ``<!subteam^S1|@sre>`` → ``@sre``, ``<https://x|label>`` → ``label``. The text
    is taken as typed (the parser has already un-escaped Slack's entities). None when a user's
    name is not known: the caller then shows the text in mrkdwn, where Slack renders the
    mention itself."""
    unknown = False

    def show(match: re.Match[str]) -> str:
        nonlocal unknown
        sigil, ident, label, url, url_label = match.groups()
        if url is not None:
            return url_label or url
        if sigil == "@":
            name = names.get(ident) or label
            if not name:
                unknown = True
                return match.group(0)
            return name if name.startswith("@") else f"@{name}"
        if sigil == "#":
            return f"#{label or ident}"
        if label:  # <!subteam^S1|@sre>, <!date^…|fallback>
            return label
        return f"@{ident}" if ident in {"here", "channel", "everyone"} else ident

    shown = _TOKEN.sub(show, text)
    return None if unknown else shown


def named(text: str, names: Mapping[str, str]) -> str:
    """``text`` with each user mention whose name ``names`` knows written ``@name``; the rest
    (other mentions, links, text) left as it is."""

    def name(match: re.Match[str]) -> str:
        shown = plain(match.group(0), names)
        return shown if shown is not None else match.group(0)

    return _USER.sub(name, text)


def mentions_as_names(text: str, names: Mapping[str, str] | None = None) -> str:
    """``text`` with every user mention written as the user's name, for text the bot keeps and
    shows again (an incident's title, its channel name): ``<@U0BOB|bob>`` → ``@bob``,
    ``<@U0BOB>`` → ``@bob`` when ``names`` knows U0BOB, else ``@U0BOB``. The result holds no
    mention token, so made :func:`inert` it shows as typed and pings no one."""

    def name(match: re.Match[str]) -> str:
        shown = plain(match.group(0), names or {})
        return shown if shown is not None else f"@{match.group(1)}"

    return _USER.sub(name, text)


def inert_but_mentions(text: str) -> str:
    """User text made inert (:func:`inert`) except its user mentions, which Slack shows as the
    user's name: for mrkdwn standing in for a plain_text field whose names are not known."""
    parts = _USER_PART.split(text)
    return "".join(part if _USER.fullmatch(part) else inert(part) for part in parts)


_USER_PART = re.compile(r"(<@[UW][A-Z0-9]+(?:\|[^<>]*)?>)")
