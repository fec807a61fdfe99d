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

__all__ = ["fit", "inert", "uninert"]


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
