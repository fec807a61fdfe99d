"""The Process: parts start in the order added, stop in reverse, each on its own; jobs stop
first. And the bot's own process declares its parts in the order shutdown needs."""

from __future__ import annotations

import asyncio

import pytest

from bot.process import Process, Step


def _recorder(log: list[str], what: str, *, fail: bool = False) -> Step:
    async def step() -> None:
        log.append(what)
        if fail:
            raise RuntimeError(f"{what} failed")

    return step


async def test_parts_start_in_order_and_stop_in_reverse_each_on_its_own() -> None:
    log: list[str] = []
    process = Process()
    process.add("a", start=_recorder(log, "start a"), stop=_recorder(log, "stop a"))
    process.add("b", stop=_recorder(log, "stop b", fail=True))
    process.add("c", start=_recorder(log, "start c"), stop=_recorder(log, "stop c"))
    await process.start()
    await process.stop()
    assert log == [
        "start a",
        "start c",
        "stop c",
        "stop b",
        "stop a",
    ]  # b's failure stopped nothing


async def test_jobs_run_after_the_starts_and_stop_before_the_parts() -> None:
    log: list[str] = []

    async def job(stop: asyncio.Event) -> None:
        log.append("job running")
        await stop.wait()
        log.append("job stopped")

    process = Process()
    process.add("owner", stop=_recorder(log, "owner stopped"), jobs={"the job": job})
    await process.start()
    await asyncio.sleep(0.05)
    assert process.loops.running("the job")
    await process.stop()
    assert log == ["job running", "job stopped", "owner stopped"]


async def test_without_jobs_nothing_runs_in_the_background() -> None:
    async def job(stop: asyncio.Event) -> None:
        raise AssertionError("must not run")

    process = Process(jobs=False)
    process.add("owner", jobs={"the job": job})
    await process.start()
    assert not process.loops.names
    await process.stop()


def test_names_are_unique_and_parts_are_added_before_start() -> None:
    process = Process()
    process.add("a")
    with pytest.raises(ValueError, match="already added"):
        process.add("a")


async def test_a_part_cannot_be_added_once_started() -> None:
    process = Process()
    await process.start()
    with pytest.raises(RuntimeError, match="before the process starts"):
        process.add("late")
    await process.stop()


def test_the_bots_parts_stop_in_the_order_shutdown_needs(tmp_path: object) -> None:
    """Requests in flight first (no new work), then each feature (executions drain before the
    rollout followers stop), the outbox, the PagerDuty client, then AWS, Slack and Redis:
    nothing stops before what uses it."""
    from bot.app import PROCESS, create_app  # noqa: PLC0415
    from core.config import load_config  # noqa: PLC0415
    from core.settings import Settings  # noqa: PLC0415
    from examples import EXAMPLE_CONFIG  # noqa: PLC0415

    settings = Settings(
        slack_bot_token="xoxb-unused",
        slack_signing_secret="unused-signing-secret",
        redis_url="redis://127.0.0.1:1/0",
    )
    app = create_app(settings, load_config(EXAMPLE_CONFIG))
    stops = list(reversed(app[PROCESS].parts))
    assert stops == [
        "requests in flight",
        "operations",  # executions drain, then the rollout followers stop
        "dr",
        "logs",
        "status",
        "incidents",
        "alarms",
        "outbox",
        "pagerduty",
        "aws",
        "slack",
        "redis",
    ]
    assert [f.name for f in app[PROCESS].features] == [
        "alarms",
        "incidents",
        "status",
        "logs",
        "dr",
        "operations",
    ]
    assert sorted(app[PROCESS].job_names) == [
        "alarms.background",
        "approvals.sweeper",
        "incidents.loop",
        "rollout.takeover",
    ]


async def test_a_feature_is_added_whole_and_its_stops_run_last_first() -> None:
    from commands.feature import Feature  # noqa: PLC0415

    log: list[str] = []

    async def job(stop: asyncio.Event) -> None:
        await stop.wait()
        log.append("job stopped")

    process = Process()
    process.add_feature(
        Feature(
            name="f",
            deps=None,
            jobs={"f.job": job},
            stops=[_recorder(log, "stop first-listed"), _recorder(log, "stop last-listed")],
        )
    )
    await process.start()
    await asyncio.sleep(0.02)
    await process.stop()
    assert log == ["job stopped", "stop last-listed", "stop first-listed"]
    assert process.parts == ["f"]
