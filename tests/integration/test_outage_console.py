"""The console's `:break SOURCE` in front of the real bot, on moto: the sev1 checklist fills
itself in, a source breaks, Re-check shows it; an unknown source is refused."""

from __future__ import annotations

import io
from pathlib import Path

from bot.wiring import Overrides
from sandbox.aws_world import DhanamWorld
from sandbox.console import Console
from tests.fixtures.bot import aws_sandbox
from tests.scenario.outage_helpers import ANSWERING_LIMIT, config_with_limit


async def test_break_then_recheck_in_the_console(
    redis_url: str, aws_world: DhanamWorld, tmp_path: Path
) -> None:
    out = io.StringIO()
    config = config_with_limit(tmp_path, ANSWERING_LIMIT)
    async with aws_sandbox(
        redis_url, aws_world, Overrides(sweeper=False), config_path=config
    ) as world:
        console = Console(world, out)
        assert await console.run_line("/dhanam incident declare sev1 Everything down")
        shown = out.getvalue()
        assert "Total System Outage checklist — 0 of 7 done · ⏳ checking…" in shown
        assert "Total System Outage checklist — 5 of 7 done · checked " in shown
        assert "✓ 5. Check RDS availability" in shown
        assert await console.run_line(":in everything-down")
        assert await console.run_line(":break rds")
        assert "rds broken: RDS dhanam-production stopped" in out.getvalue()
        before = len(out.getvalue())
        assert await console.run_line(":click Re-check")
        after = out.getvalue()[before:]
        assert "4 of 7 done" in after
        assert "✗ 5. Check RDS availability" in after
        assert "`dhanam-production` stopped" in after
        assert not await console.run_line(":break moon")
        assert "! unknown source 'moon': one of dns, cloudfront, rds, ecs, logs, health, dr" in (
            out.getvalue()
        )
