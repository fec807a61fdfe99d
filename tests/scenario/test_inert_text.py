"""Scenario: markup a user types (@channel, @here, mentions, disguised links) reaches no Slack
write of the bot as live markup — every chat.postMessage, chat.update, chat.postEphemeral,
conversations.setTopic, views.publish and response_url post the emulator recorded is checked,
not just the card. plain_text objects are skipped: Slack parses nothing there."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from typing import Any

from sandbox.signing import JSON_CONTENT_TYPE, event_callback_body, sign
from sandbox.world import SandboxWorld, buttons_of
from tests.scenario.incident_helpers import card_text, incident_of, only_channel

REASON = "<!channel> ship it <@U0BOB> <https://evil.example|click>"
# Live markup only a user could have put there (the bot mentions <@U0BOB> and the approvers'
# group <!subteam^S0SRE> itself; the user's S0OPS group and U0MALLORY it never does).
LIVE = re.compile(
    r"<!(?:channel|here|everyone)|<!subteam\^S0OPS|<@U0MALLORY|<#C0SECRET|<https://evil"
    r"|ship it <@U0BOB>|<@U0BOB> <https"
)
JSON_PARAMS = ("blocks", "attachments", "view")


def _strings(value: Any) -> Iterator[str]:
    """Every string Slack would parse as mrkdwn/text in ``value`` (plain_text objects skipped)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        if value.get("type") == "plain_text":
            return
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def written(world: SandboxWorld) -> list[tuple[str, str]]:
    """(method, text) for every string of every call the bot made to the emulator."""
    out = []
    for call in world.slack.calls:
        for key, value in call.params.items():
            if key == "token":
                continue
            parsed: Any = value
            if key in JSON_PARAMS and isinstance(value, str):
                with contextlib.suppress(json.JSONDecodeError):
                    parsed = json.loads(value)
            out.extend((call.method, s) for s in _strings(parsed))
    return out


def assert_nothing_live(world: SandboxWorld, *, shown: list[str]) -> None:
    """No write carries live user markup, and each escaped form in ``shown`` was written
    (the text is on the surfaces, shown literally, not dropped)."""
    writes = written(world)
    assert writes
    live = [(method, text) for method, text in writes if LIVE.search(text)]
    assert live == []
    everything = "\n".join(text for _, text in writes)
    for escaped in shown:
        assert escaped in everything, escaped


def methods(world: SandboxWorld) -> set[str]:
    return {c.method for c in world.slack.calls}


async def test_deploy_reason_is_shown_inert_on_every_write(aws_bot: SandboxWorld) -> None:
    reply = await aws_bot.slash(
        f"deploy api production v1.3.0 --reason {REASON} <@U0MALLORY> <#C0SECRET> "
        "<!subteam^S0OPS|@oncall> &lt;b&gt; &amp;",
        user="alice",
        channel="C0DEPLOYS",
    )
    assert reply.status == 200
    await aws_bot.settle()
    card = next(
        m for m in aws_bot.slack.messages("C0DEPLOYS") if buttons_of(m.blocks or [])
    ).snapshot()
    blocks = json.dumps(card.blocks, ensure_ascii=False)
    # typed "<b> &" (Slack sent &lt;b&gt; &amp;): decoded once, escaped once, shown as typed
    assert "&lt;b&gt; &amp;”" in blocks
    assert "*Requested by* <@U0ALICE>" in blocks  # the bot's own mentions still work

    await aws_bot.slash("approvals", user="bob", channel="C0DEPLOYS")
    await aws_bot.settle()
    await aws_bot.click(
        card, next(b for b in buttons_of(card.blocks) if b.label == "Approve"), user="bob"
    )
    await aws_bot.settle()
    await aws_bot.slash("audit", user="carol", channel="C0DEPLOYS")
    await aws_bot.settle()
    assert {"chat.postMessage", "chat.update", "response_url"} <= methods(aws_bot)
    assert_nothing_live(
        aws_bot,
        shown=[
            "&lt;!channel&gt; ship it &lt;@U0BOB&gt; &lt;https://evil.example|click&gt;",
            "&lt;@U0MALLORY&gt; &lt;#C0SECRET&gt; &lt;!subteam^S0OPS|@oncall&gt;",
        ],
    )


async def test_lock_reason_is_inert_in_reply_status_audit_and_home(
    aws_bot: SandboxWorld,
) -> None:
    await aws_bot.slash(
        "lock api production <!here> migration <https://evil.example|runbook>", user="carol"
    )
    await aws_bot.settle()
    await aws_bot.slash("lock api production <!everyone> again", user="dave")
    await aws_bot.settle()
    await aws_bot.slash("status api production", user="bob")
    await aws_bot.settle()
    await aws_bot.slash("audit", user="bob")
    await aws_bot.settle()
    event = {
        "type": "app_home_opened",
        "user": "U0BOB",
        "channel": "D0BOB",
        "tab": "home",
        "event_ts": f"{time.time():.6f}",
    }
    body = event_callback_body(event)
    reply = await aws_bot.post(
        "/slack/events", body, sign(aws_bot.signing_secret, body, content_type=JSON_CONTENT_TYPE)
    )
    assert reply.status == 200
    await aws_bot.settle()
    assert aws_bot.slack.published_view("U0BOB") is not None
    await aws_bot.slash("unlock api production", user="carol")
    await aws_bot.settle()
    assert "response_url" in methods(aws_bot)
    assert_nothing_live(
        aws_bot, shown=["&lt;!here&gt; migration &lt;https://evil.example|runbook&gt;"]
    )
    replies = [
        c.params.get("text", "")
        for c in aws_bot.slack.calls
        if c.method == "response_url" and "unlocked" in str(c.params.get("text", ""))
    ]
    assert replies
    assert "(locked by <@U0CAROL>: &lt;!here&gt; migration" in replies[-1]


async def test_incident_title_update_and_summary_are_inert_everywhere(
    world: SandboxWorld,
) -> None:
    await world.slash("incident declare sev2 <!here> db slow", user="alice")
    await world.settle()
    channel = only_channel(world)
    incident = await incident_of(world, channel.id)
    assert channel.topic.endswith("&lt;!here&gt; db slow")
    # setTopic does not format: the commander by name, never a raw <@U…> token.
    assert "IC @alice · " in channel.topic
    assert "<@" not in channel.topic
    card = world.slack.messages(channel.id)[0]
    header = (card.blocks or [])[0]["text"]
    assert header == {"type": "plain_text", "text": "SEV2 <!here> db slow — investigating"}
    announced = world.slack.messages("C0INCIDENTS")[0].text
    assert "*&lt;!here&gt; db slow*" in announced
    assert f"<#{channel.id}>" in announced

    await world.slash(
        "incident update <!channel> still slow, ask <@U0MALLORY> <https://evil.example|graph>",
        user="bob",
        channel=channel.id,
    )
    await world.settle()
    assert "&lt;!channel&gt; still slow" in card_text(world, incident)
    await world.slash(
        "incident resolve <!everyone> cache flushed <#C0SECRET>", user="alice", channel=channel.id
    )
    await world.settle()
    timeline = world.slack.messages(channel.id)[-1].text
    assert timeline.startswith(f"*Timeline of {incident.id}* — &lt;!here&gt; db slow")
    assert "update: &lt;!channel&gt; still slow" in timeline
    assert "resolved: &lt;!everyone&gt; cache flushed &lt;#C0SECRET&gt;" in timeline

    assert {"chat.postMessage", "chat.update", "conversations.setTopic"} <= methods(world)
    assert len(world.slack.calls_to("conversations.setTopic")) >= 2  # declare and resolve
    assert_nothing_live(
        world,
        shown=[
            "&lt;!here&gt; db slow",
            "&lt;!channel&gt; still slow, ask &lt;@U0MALLORY&gt; "
            "&lt;https://evil.example|graph&gt;",
            "&lt;!everyone&gt; cache flushed",
        ],
    )


async def test_lock_reason_on_a_break_glass_card_is_inert(aws_bot: SandboxWorld) -> None:
    await aws_bot.slash("lock api production <!here> migration", user="carol")
    await aws_bot.settle()
    await aws_bot.slash(
        "deploy api production v1.3.0 --break-glass --reason hotfix",
        user="alice",
        channel="C0DEPLOYS",
    )
    await aws_bot.settle()
    card = next(m for m in aws_bot.slack.messages("C0DEPLOYS") if buttons_of(m.blocks or []))
    assert "BREAK-GLASS" in json.dumps(card.blocks)
    assert_nothing_live(aws_bot, shown=["&lt;!here&gt; migration"])
