"""The sandbox console (sandbox/console.py) in front of the real bot, in-process: each line waits
until what it caused has settled, later background work is marked, `:in` shows the channel."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.wiring import Overrides
from core.settings import LogFormat
from sandbox.console import Console
from sandbox.slack_emulator import SANDBOX_BOT_TOKEN
from sandbox.world import SandboxWorld


@pytest.fixture
async def world(redis_url: str) -> AsyncIterator[SandboxWorld]:
    sandbox = SandboxWorld(
        redis_url=redis_url,
        aws=False,
        dhanam_api=True,
        log_format=LogFormat.JSON,
        overrides=Overrides(sweeper=False),
    )
    await sandbox.start()
    try:
        yield sandbox
    finally:
        await sandbox.stop()


@pytest.fixture
def out() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def console(world: SandboxWorld, out: io.StringIO) -> Console:
    return Console(world, out)


async def test_a_slow_status_reply_prints_under_its_own_command(
    world: SandboxWorld, console: Console, out: io.StringIO
) -> None:
    assert world.api is not None
    world.api.delay = 0.8  # every health answer takes longer than the old 0.3 s of quiet
    assert await console.run_line("/dhanam status")
    after_status = out.getvalue()
    assert "gathered in" in after_status, after_status
    assert "Status: every service in every environment" in after_status
    assert await console.run_line(":as bob")
    assert out.getvalue() == after_status  # nothing of the status reply came late
    assert "later" not in out.getvalue()


async def test_background_work_after_the_line_settled_is_marked_later(
    world: SandboxWorld, console: Console, out: io.StringIO
) -> None:
    client = AsyncWebClient(token=SANDBOX_BOT_TOKEN, base_url=world.slack.api_url)

    async def later() -> None:
        await asyncio.sleep(0.3)
        await client.chat_postMessage(channel="C0ALERTS", text="a rollout finished")

    assert await console.run_line("/dhanam help")
    task = asyncio.create_task(later())
    assert await console.run_line(":wait 1")
    await task
    shown = out.getvalue()
    assert "… later, in #alerts:\ndhanam in #alerts\n│ a rollout finished" in shown

    # Between two lines (no :wait): printed before the next line's own output, marked.
    await client.chat_postMessage(channel="C0OPS", text="meanwhile")
    await asyncio.sleep(0.1)
    assert await console.run_line(":as bob")
    assert out.getvalue().endswith("… later, in #ops:\ndhanam in #ops\n│ meanwhile\n")


async def test_in_shows_the_channels_newest_messages(
    world: SandboxWorld, console: Console, out: io.StringIO
) -> None:
    client = AsyncWebClient(token=SANDBOX_BOT_TOKEN, base_url=world.slack.api_url)
    for n in range(1, 6):
        await client.chat_postMessage(channel="C0INCIDENTS", text=f"announcement {n}")
    await asyncio.sleep(0.1)
    console.show_pending()  # not this test's subject
    start = len(out.getvalue())
    assert await console.run_line(":in #incidents")
    shown = out.getvalue()[start:]
    assert console.prompt == "alice in #incidents> "
    assert "#incidents, the 3 newest messages:" in shown
    assert "announcement 3" in shown
    assert "announcement 5" in shown
    assert "announcement 2" not in shown
    assert shown.index("announcement 3") < shown.index("announcement 5")  # oldest first

    assert await console.run_line(":in oncall")
    assert "(#oncall has no messages yet)" in out.getvalue()


async def test_the_sev1_checklist_lists_its_items(console: Console, out: io.StringIO) -> None:
    assert await console.run_line("/dhanam incident declare sev1 API returning 5xx")
    shown = out.getvalue()
    assert "Total System Outage checklist — 0 of 7 done\n│ ☐ " in shown
    assert shown.count("│ ☐ ") >= 7
    assert "SEV1 API returning 5xx" in shown  # the header, its case kept
    assert "SEV1 API RETURNING 5XX" not in shown
