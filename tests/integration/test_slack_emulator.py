"""The Slack emulator, driven by slack_sdk's real AsyncWebClient and by aiohttp."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack_emulator import EmuChannel, EmuUser, EventKind, SlackEmulator

TOKEN = "xoxb-sandbox"


@pytest.fixture
async def emu() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator.dhanam_defaults(TOKEN) as emulator:
        yield emulator


@pytest.fixture
def client(emu: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=emu.api_url)


async def test_api_url_and_auth_test(emu: SlackEmulator, client: AsyncWebClient) -> None:
    assert emu.api_url.startswith("http://127.0.0.1:")
    assert emu.api_url.endswith("/api/")
    assert emu.api_url == emu.base_url + "/api/"
    resp = await client.auth_test()
    assert resp["ok"] is True
    assert resp["user_id"] == "U0BOT"
    assert resp["bot_id"] == "B0BOT"
    assert resp["team_id"] == "T0DHANAM"
    [call] = emu.calls_to("auth.test")
    assert call.status == 200
    assert call.ok


async def test_post_update_and_thread_reply(emu: SlackEmulator, client: AsyncWebClient) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Deploy* api"}}]
    first = await client.chat_postMessage(channel="C0DEPLOYS", text="Deploy api", blocks=blocks)
    assert first["channel"] == "C0DEPLOYS"
    assert first["message"]["text"] == "Deploy api"
    assert first["message"]["blocks"] == blocks
    assert first["message"]["bot_id"] == "B0BOT"
    second = await client.chat_postMessage(channel="#deploys", text="second")
    assert second["channel"] == "C0DEPLOYS"
    assert float(second["ts"]) > float(first["ts"])
    assert first["ts"] == "1700000000.000100"

    updated = await client.chat_update(channel="C0DEPLOYS", ts=first["ts"], text="Deployed api")
    assert updated["ts"] == first["ts"]
    assert updated["message"]["text"] == "Deployed api"
    assert updated["message"]["blocks"] == blocks  # blocks not sent -> kept

    reply = await client.chat_postMessage(
        channel="C0DEPLOYS", thread_ts=first["ts"], text="step 1/3 done"
    )
    assert reply["message"]["thread_ts"] == first["ts"]

    msgs = emu.messages("C0DEPLOYS")
    assert [m.text for m in msgs] == ["Deployed api", "second", "step 1/3 done"]
    assert msgs[0].edited == 1
    assert [m.text for m in emu.thread("C0DEPLOYS", first["ts"])] == [
        "Deployed api",
        "step 1/3 done",
    ]
    assert emu.max_writes_in_window("C0DEPLOYS", window=60) == 4
    assert emu.max_writes_in_window("deploys", window=60) == 4

    with pytest.raises(SlackApiError) as missing:
        await client.chat_update(channel="C0DEPLOYS", ts="1.000001", text="x")
    assert missing.value.response["error"] == "message_not_found"
    with pytest.raises(SlackApiError) as nochan:
        await client.chat_postMessage(channel="C0NOPE", text="x")
    assert nochan.value.response["error"] == "channel_not_found"
    with pytest.warns(UserWarning, match="text"), pytest.raises(SlackApiError) as notext:
        await client.chat_postMessage(channel="C0OPS")
    assert notext.value.response["error"] == "no_text"


async def test_ephemeral_and_delete(emu: SlackEmulator, client: AsyncWebClient) -> None:
    resp = await client.chat_postEphemeral(channel="C0OPS", user="U0ALICE", text="only you")
    assert resp["message_ts"]
    [eph] = emu.ephemerals("U0ALICE")
    assert eph.text == "only you"
    assert eph.ephemeral_to == "U0ALICE"
    assert emu.messages("C0OPS") == []  # ephemerals are not channel history

    posted = await client.chat_postMessage(channel="C0OPS", text="bye")
    await client.chat_delete(channel="C0OPS", ts=posted["ts"])
    assert emu.messages("C0OPS") == []
    assert emu.messages("C0OPS", include_deleted=True)[0].deleted


async def test_conversations_create_invite_topic_members(
    emu: SlackEmulator, client: AsyncWebClient
) -> None:
    created = await client.conversations_create(name="inc-42-db-latency")
    channel = created["channel"]
    assert channel["id"].startswith("C")
    assert channel["name"] == "inc-42-db-latency"
    assert channel["is_member"] is True
    assert emu.channel_by_name("inc-42-db-latency") is not None

    with pytest.raises(SlackApiError) as taken:
        await client.conversations_create(name="inc-42-db-latency")
    assert taken.value.response["error"] == "name_taken"
    for bad, error in [
        ("Inc-42", "invalid_name_specials"),
        ("inc 42", "invalid_name_specials"),
        ("x" * 81, "invalid_name_maxlength"),
        ("--", "invalid_name_punctuation"),
    ]:
        with pytest.raises(SlackApiError) as invalid:
            await client.conversations_create(name=bad)
        assert invalid.value.response["error"] == error

    invited = await client.conversations_invite(channel=channel["id"], users=["U0BOB", "U0CAROL"])
    assert invited["ok"]
    # a mix of members and new users succeeds
    await client.conversations_invite(channel=channel["id"], users="U0BOB,U0DAVE")
    with pytest.raises(SlackApiError) as already:
        await client.conversations_invite(channel=channel["id"], users="U0BOB,U0CAROL")
    assert already.value.response["error"] == "already_in_channel"
    with pytest.raises(SlackApiError) as nouser:
        await client.conversations_invite(channel=channel["id"], users="U0NOBODY")
    assert nouser.value.response["error"] == "user_not_found"

    await client.conversations_setTopic(channel=channel["id"], topic="SEV2: db latency")
    info = await client.conversations_info(channel=channel["id"])
    assert info["channel"]["topic"]["value"] == "SEV2: db latency"
    members = await client.conversations_members(channel=channel["id"])
    assert members["members"] == ["U0BOT", "U0BOB", "U0CAROL", "U0DAVE"]
    with pytest.raises(SlackApiError) as nochan:
        await client.conversations_info(channel="C0MISSING")
    assert nochan.value.response["error"] == "channel_not_found"


async def test_pins_reactions_usergroups_users(emu: SlackEmulator, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C0INCIDENTS", text="Incident summary")
    await client.pins_add(channel="C0INCIDENTS", timestamp=posted["ts"])
    assert emu.messages("C0INCIDENTS")[0].pinned
    with pytest.raises(SlackApiError) as again:
        await client.pins_add(channel="C0INCIDENTS", timestamp=posted["ts"])
    assert again.value.response["error"] == "already_pinned"
    await client.reactions_add(channel="C0INCIDENTS", timestamp=posted["ts"], name="eyes")
    assert emu.messages("C0INCIDENTS")[0].reactions == {"eyes": ["U0BOT"]}

    group = await client.usergroups_users_list(usergroup="S0SRE")
    assert group["users"] == ["U0BOB", "U0CAROL"]
    with pytest.raises(SlackApiError) as nogroup:
        await client.usergroups_users_list(usergroup="S0NOPE")
    assert nogroup.value.response["error"] == "no_such_subteam"

    alice = await client.users_info(user="U0ALICE")
    assert alice["user"]["name"] == "alice"
    assert alice["user"]["real_name"] == "Alice Ahmed"
    with pytest.raises(SlackApiError) as nouser:
        await client.users_info(user="U0ZED")
    assert nouser.value.response["error"] == "user_not_found"


async def test_views_publish_and_open(emu: SlackEmulator, client: AsyncWebClient) -> None:
    home = {
        "type": "home",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}],
    }
    resp = await client.views_publish(user_id="U0DAVE", view=home)
    assert resp["view"]["type"] == "home"
    published = emu.published_view("U0DAVE")
    assert published is not None
    assert published["blocks"] == home["blocks"]
    assert emu.published_view("U0ALICE") is None

    modal = {
        "type": "modal",
        "callback_id": "restore",
        "title": {"type": "plain_text", "text": "R"},
    }
    opened = await client.views_open(trigger_id="1.2.abc", view=modal)
    assert opened["view"]["callback_id"] == "restore"


async def test_bad_token_and_unknown_method(emu: SlackEmulator) -> None:
    bad = AsyncWebClient(token="xoxb-wrong", base_url=emu.api_url)
    with pytest.raises(SlackApiError) as invalid:
        await bad.auth_test()
    assert invalid.value.response["error"] == "invalid_auth"
    async with aiohttp.ClientSession() as session:
        async with session.post(emu.api_url + "auth.test") as resp:
            assert resp.status == 200
            assert await resp.json() == {"ok": False, "error": "not_authed"}
        async with session.post(
            emu.api_url + "chat.postMessage",
            data={"token": TOKEN, "channel": "C0OPS", "text": "form-encoded with token"},
        ) as resp:
            assert (await resp.json())["ok"] is True
        async with session.post(emu.api_url + "admin.nope", data={"token": TOKEN}) as resp:
            assert await resp.json() == {"ok": False, "error": "unknown_method"}
    assert emu.messages("C0OPS")[0].text == "form-encoded with token"
    assert "token" not in emu.calls_to("chat.postMessage")[0].params
    assert len(emu.calls) == 4


async def test_response_url_ephemeral_replace_and_in_channel(
    emu: SlackEmulator, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel="C0DEPLOYS", text="Approve deploy?")
    async with aiohttp.ClientSession() as session:
        slash_url = emu.new_response_url("C0DEPLOYS", "U0ALICE")
        async with session.post(slash_url, json={"text": "Working on it"}) as resp:
            assert resp.status == 200
            assert await resp.text() == "ok"
        assert [m.text for m in emu.ephemerals("U0ALICE")] == ["Working on it"]

        # replace_original on a slash-command URL replaces what it posted before
        async with session.post(slash_url, json={"text": "Done", "replace_original": True}):
            pass
        assert [m.text for m in emu.ephemerals("U0ALICE")] == ["Done"]

        button_url = emu.new_response_url("C0DEPLOYS", "U0BOB", message_ts=posted["ts"])
        async with session.post(
            button_url, json={"text": "Approved by bob", "replace_original": True}
        ) as resp:
            assert resp.status == 200
        [original] = emu.messages("C0DEPLOYS")
        assert original.text == "Approved by bob"
        assert original.edited == 1

        async with session.post(
            button_url,
            json={
                "text": "Deploy started",
                "response_type": "in_channel",
                "thread_ts": posted["ts"],
            },
        ) as resp:
            assert resp.status == 200
        assert [m.text for m in emu.thread("C0DEPLOYS", posted["ts"])] == [
            "Approved by bob",
            "Deploy started",
        ]

        async with session.post(emu.base_url + "/response/nope", json={"text": "x"}) as resp:
            assert resp.status == 404
    assert [c.status for c in emu.calls_to("response_url")] == [200, 200, 200, 200, 404]


async def test_response_url_use_limit(emu: SlackEmulator) -> None:
    url = emu.new_response_url("C0OPS", "U0ALICE")
    async with aiohttp.ClientSession() as session:
        statuses = []
        for i in range(6):
            async with session.post(url, json={"text": f"n{i}"}) as resp:
                statuses.append(resp.status)
    assert statuses == [200] * 5 + [404]


async def test_429_is_retried_by_slack_sdk_rate_limit_handler(
    emu: SlackEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # slack_sdk sleeps Retry-After + random() seconds; pin the jitter to keep this at ~1 s
    monkeypatch.setattr(random, "random", lambda: 0.0)
    client = AsyncWebClient(token=TOKEN, base_url=emu.api_url)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
    emu.inject(429, method="chat.postMessage", count=1, retry_after=1)

    started = time.monotonic()
    resp = await client.chat_postMessage(channel="C0OPS", text="after retry")
    assert resp["ok"]
    assert time.monotonic() - started >= 1.0

    first, second = emu.calls_to("chat.postMessage")
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 1.0
    assert [m.text for m in emu.messages("C0OPS")] == ["after retry"]  # fault changed nothing


async def test_429_raw_response_is_slacks(emu: SlackEmulator) -> None:
    emu.inject(429, retry_after=7)
    async with aiohttp.ClientSession() as session:
        async with session.post(emu.api_url + "chat.postMessage", data={"token": TOKEN}) as resp:
            assert resp.status == 429
            assert resp.headers["Retry-After"] == "7"
            assert resp.headers["Content-Type"].startswith("application/json")
            assert json.loads(await resp.text()) == {"ok": False, "error": "ratelimited"}
        async with session.post(emu.api_url + "auth.test", data={"token": TOKEN}) as resp:
            assert resp.status == 200  # count=1 is used up


async def test_500_fault_raises_slack_api_error(emu: SlackEmulator, client: AsyncWebClient) -> None:
    emu.inject(500, method="chat.postMessage", count=None)
    with pytest.raises(SlackApiError) as failed:
        await client.chat_postMessage(channel="C0OPS", text="lost")
    assert failed.value.response.status_code == 500
    assert (await client.auth_test())["ok"]  # other methods unaffected
    with pytest.raises(SlackApiError):
        await client.chat_postMessage(channel="C0OPS", text="lost again")
    emu.clear_faults()
    await client.chat_postMessage(channel="C0OPS", text="kept")
    assert [c.status for c in emu.calls_to("chat.postMessage")] == [500, 500, 200]
    assert [m.text for m in emu.messages("C0OPS")] == ["kept"]


async def test_timed_fault(emu: SlackEmulator, client: AsyncWebClient) -> None:
    emu.inject(503, seconds=0.2)
    for _ in range(3):
        with pytest.raises(SlackApiError):
            await client.auth_test()
    await asyncio.sleep(0.25)
    assert (await client.auth_test())["ok"]


async def test_subscribe_delivers_every_change(emu: SlackEmulator, client: AsyncWebClient) -> None:
    queue = emu.subscribe()
    other = emu.subscribe()
    posted = await client.chat_postMessage(channel="C0OPS", text="hello")
    await client.chat_update(channel="C0OPS", ts=posted["ts"], text="hello again")
    await client.pins_add(channel="C0OPS", timestamp=posted["ts"])
    created = await client.conversations_create(name="inc-7")
    await client.conversations_invite(channel=created["channel"]["id"], users="U0ALICE")
    await client.conversations_setTopic(channel=created["channel"]["id"], topic="t")
    await client.chat_postEphemeral(channel="C0OPS", user="U0BOB", text="psst")
    await client.views_publish(user_id="U0BOB", view={"type": "home", "blocks": []})

    events = [queue.get_nowait() for _ in range(queue.qsize())]
    assert [e.kind for e in events] == [
        EventKind.message_posted,
        EventKind.message_updated,
        EventKind.pinned,
        EventKind.channel_created,
        EventKind.member_joined,
        EventKind.topic_set,
        EventKind.ephemeral,
        EventKind.view_published,
    ]
    assert events[0].message is not None
    assert events[0].message.text == "hello"  # a snapshot, not the edited message
    assert events[1].message is not None
    assert events[1].message.text == "hello again"
    assert events[4].user == "U0ALICE"
    assert other.qsize() == len(events)
    emu.unsubscribe(other)
    await client.chat_postMessage(channel="C0OPS", text="more")
    assert other.qsize() == len(events)
    assert queue.qsize() == 1


async def test_custom_world_and_dm() -> None:
    users = [EmuUser("U1", "ann", "Ann A")]
    channels = [EmuChannel("C1", "general", members=["U1"])]
    async with SlackEmulator("xoxb-t", "T1", users, channels, {"S1": ["U1"]}) as emu:
        client = AsyncWebClient(token="xoxb-t", base_url=emu.api_url)
        dm = await client.chat_postMessage(channel="U1", text="direct")
        assert dm["channel"] == "D1"
        assert emu.messages("U1")[0].text == "direct"
        with pytest.raises(SlackApiError) as notin:
            await client.chat_postEphemeral(channel="C1", user="U0BOT", text="x")
        assert notin.value.response["error"] == "user_not_in_channel"
    assert SlackEmulator().world.users.keys() == {"U0BOT"}


async def test_max_writes_in_window() -> None:
    async with SlackEmulator.dhanam_defaults() as emu:
        client = AsyncWebClient(token=TOKEN, base_url=emu.api_url)
        for i in range(5):
            await client.chat_postMessage(channel="C0ALERTS", text=f"a{i}")
        await client.chat_postMessage(channel="C0OPS", text="elsewhere")
        assert emu.max_writes_in_window("C0ALERTS", window=5.0) == 5
        assert emu.max_writes_in_window("C0ALERTS", window=1e-9) == 1
        assert emu.max_writes_in_window("C0OPS") == 1
        assert emu.max_writes_in_window("C0ONCALL") == 0


# ---- Block Kit: refused as Slack refuses it (sandbox/block_kit.py) ---------------------------


def _section(text: str) -> dict[str, object]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


async def test_invalid_blocks_are_refused_on_every_message_method(
    emu: SlackEmulator, client: AsyncWebClient
) -> None:
    too_long = [_section("x" * 3001)]
    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel="C0DEPLOYS", text="t", blocks=too_long)
    answer = refused.value.response.data
    assert isinstance(answer, dict)
    assert answer["error"] == "invalid_blocks"
    assert any("[json-pointer:/blocks/0/text/text]" in e for e in answer["errors"])
    assert answer["response_metadata"]["messages"][0].startswith("[ERROR] ")
    assert emu.messages("C0DEPLOYS") == []  # nothing posted

    posted = await client.chat_postMessage(channel="C0DEPLOYS", text="t", blocks=[_section("ok")])
    header = [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]
    with pytest.raises(SlackApiError, match="invalid_blocks"):
        await client.chat_update(channel="C0DEPLOYS", ts=posted["ts"], text="t", blocks=header)
    [kept] = emu.messages("C0DEPLOYS")
    assert kept.blocks == [_section("ok")]
    assert kept.edited == 0

    button = {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "b"}}
    buttons = [
        {"type": "actions", "elements": [{**button, "action_id": f"a{i}"} for i in range(26)]}
    ]
    with pytest.raises(SlackApiError, match="invalid_blocks"):
        await client.chat_postEphemeral(
            channel="C0DEPLOYS", user="U0ALICE", text="t", blocks=buttons
        )
    with pytest.raises(SlackApiError, match="invalid_blocks"):
        await client.chat_postMessage(channel="C0DEPLOYS", text="t", blocks=[_section("a")] * 51)
    await client.chat_postMessage(channel="C0DEPLOYS", text="t", blocks=[_section("a")] * 50)
    with pytest.raises(SlackApiError, match="msg_too_long"):
        await client.chat_postMessage(channel="C0DEPLOYS", text="t" * 40_001)
    refusals = [c.response["error"] for c in emu.calls if c.response and not c.response["ok"]]
    assert refusals == ["invalid_blocks"] * 4 + ["msg_too_long"]


async def test_invalid_views_are_refused(emu: SlackEmulator, client: AsyncWebClient) -> None:
    home = {"type": "home", "blocks": [_section("a")] * 101}
    with pytest.raises(SlackApiError) as refused:
        await client.views_publish(user_id="U0DAVE", view=home)
    answer = refused.value.response.data
    assert isinstance(answer, dict)
    assert answer["error"] == "invalid_arguments"  # what Slack answers for a view
    assert any("/view/blocks" in m for m in answer["response_metadata"]["messages"])
    assert emu.published_view("U0DAVE") is None
    await client.views_publish(user_id="U0DAVE", view={**home, "blocks": [_section("a")] * 100})

    modal = {"type": "modal", "title": {"type": "plain_text", "text": "t" * 25}, "blocks": []}
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        await client.views_open(trigger_id="1.2.abc", view=modal)


async def test_response_url_refuses_invalid_blocks(emu: SlackEmulator) -> None:
    url = emu.new_response_url("C0DEPLOYS", "U0ALICE")
    async with aiohttp.ClientSession() as session:
        bad = {"text": "t", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": ""}}]}
        async with session.post(url, json=bad) as resp:
            assert resp.status == 400
            assert await resp.text() == "invalid_blocks"
        async with session.post(url, json={"text": "t", "blocks": [_section("fine")]}) as resp:
            assert resp.status == 200
    assert [m.text for m in emu.ephemerals("U0ALICE")] == ["t"]
