"""The Slack emulator's file upload API, driven by slack_sdk's files_upload_v2 (the three
steps: files.getUploadURLExternal, the POST of the bytes, files.completeUploadExternal), and the
console's view of a shared file."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack_emulator import EmuChannel, EventKind, SlackEmulator
from sandbox.terminal import render_message

TOKEN = "xoxb-sandbox"
CONTENT = "".join(f"line {i}\n" for i in range(1, 21))


@pytest.fixture
async def emu() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator.dhanam_defaults(TOKEN) as emulator:
        yield emulator


@pytest.fixture
def client(emu: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=emu.api_url)


async def test_files_upload_v2_shares_the_file_in_the_channel(
    emu: SlackEmulator, client: AsyncWebClient
) -> None:
    events = emu.subscribe()
    answer = await client.files_upload_v2(
        channel="C0OPS",
        content=CONTENT,
        filename="api-logs.txt",
        title="api logs",
        initial_comment="<@U0BOB> asked for these logs",
    )
    assert answer["ok"] is True
    [step1] = emu.calls_to("files.getUploadURLExternal")
    assert step1.params["filename"] == "api-logs.txt"
    assert int(step1.params["length"]) == len(CONTENT.encode())
    [upload] = emu.calls_to("upload")
    assert upload.status == 200
    [step3] = emu.calls_to("files.completeUploadExternal")
    assert step3.ok
    file = emu.world.uploads.files[answer["file"]["id"]]
    assert file.text == CONTENT
    assert file.title == "api logs"
    assert file.channel == "C0OPS"
    assert file.initial_comment == "<@U0BOB> asked for these logs"
    [message] = emu.messages("C0OPS")
    assert message.text == "<@U0BOB> asked for these logs"
    assert message.via == "files.completeUploadExternal"
    assert message.files[0]["name"] == "api-logs.txt"
    assert message.files[0]["lines"] == 20
    event = events.get_nowait()
    assert event.kind is EventKind.message_posted
    assert event.message is not None
    assert event.message.files[0]["id"] == file.id

    shown = render_message(
        author="dhanam",
        text=message.text,
        blocks=None,
        names={"U0BOB": "bob"},
        where="#ops",
        files=message.files,
    )
    assert "@bob asked for these logs" in shown
    assert f"📎 api-logs.txt ({len(CONTENT)} B, 20 lines) — api logs" in shown
    assert "┆ line 1\n" in shown
    assert "┆ line 5" in shown
    assert "line 6" not in shown  # the first lines only


async def test_a_channel_the_bot_is_not_in_is_refused(
    emu: SlackEmulator, client: AsyncWebClient
) -> None:
    emu.world.channels["C0PRIVATE"] = EmuChannel("C0PRIVATE", "private", members=["U0BOB"])
    with pytest.raises(SlackApiError) as refused:
        await client.files_upload_v2(channel="C0PRIVATE", content="x", filename="x.txt")
    assert refused.value.response["error"] == "not_in_channel"
    with pytest.raises(SlackApiError) as unknown:
        await client.files_upload_v2(channel="C0NOPE", content="x", filename="x.txt")
    assert unknown.value.response["error"] == "channel_not_found"
    assert emu.messages("C0PRIVATE") == []


async def test_completing_without_the_bytes_or_twice_is_refused(
    emu: SlackEmulator, client: AsyncWebClient
) -> None:
    got = await client.files_getUploadURLExternal(filename="a.txt", length=3)
    with pytest.raises(SlackApiError) as early:
        await client.files_completeUploadExternal(files=[{"id": got["file_id"]}])
    assert early.value.response["error"] == "file_upload_not_completed"
    async with (
        aiohttp.ClientSession() as session,
        session.post(got["upload_url"], data=b"abc") as posted,
    ):
        assert posted.status == 200
        assert await posted.text() == "OK - 3"
    done = await client.files_completeUploadExternal(files=[{"id": got["file_id"]}])
    assert done["files"][0]["title"] == "a.txt"
    with pytest.raises(SlackApiError) as again:
        await client.files_completeUploadExternal(files=[{"id": got["file_id"]}])
    assert again.value.response["error"] == "file_not_found"
    with pytest.raises(SlackApiError) as bad:
        await client.files_getUploadURLExternal(filename="a.txt", length=0)
    assert bad.value.response["error"] == "invalid_arguments"
