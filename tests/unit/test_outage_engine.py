"""The checklist's check engine: all at once, each under its limit, one failure never hiding
the others; and the pure parts of the checks (DNS lines, the logs' top messages)."""

from __future__ import annotations

import asyncio
import time

from commands.outage.engine import EVIDENCE_MAX, run_checks
from commands.outage.models import STEPS, Finding, Verdict
from commands.outage.service_checks import _lookup_line, _top
from core.clock import ManualClock
from core.errors import ChatOpsError
from integrations.dns import Lookup, LookupKind


async def test_checks_run_at_once_each_under_its_limit_and_failures_stay_their_own() -> None:
    async def fine() -> Finding:
        await asyncio.sleep(0.2)
        return Finding(Verdict.PASS, "fine")

    async def slow() -> Finding:
        await asyncio.sleep(5)
        return Finding(Verdict.PASS, "never seen")

    async def refused() -> Finding:
        raise ChatOpsError("AWS refused DescribeEvents: AccessDenied <@U0EVIL>")

    async def broken() -> Finding:
        raise KeyError("bug")

    async def long() -> Finding:
        return Finding(Verdict.FAIL, "x" * 5000 + "\n  second line")

    checks = {"a": fine, "b": slow, "c": refused, "d": broken, "e": fine, "f": long}
    clock = ManualClock()
    started = time.perf_counter()
    results = await run_checks(checks, 0.5, clock)
    elapsed = time.perf_counter() - started

    assert elapsed < 0.9  # the slowest is cut at its limit; the others ran beside it
    assert list(results) == list(checks)
    assert results["a"].verdict is Verdict.PASS
    assert results["a"].checked_at == clock.now()
    assert 150 < results["a"].ms < 450
    assert results["b"].verdict is Verdict.UNKNOWN
    assert results["b"].evidence == "no answer in 0.5 s"
    assert results["c"].verdict is Verdict.UNKNOWN
    assert results["c"].evidence.startswith("could not check: AWS refused DescribeEvents")
    assert "<@" not in results["c"].evidence  # made inert
    assert results["d"].evidence == "could not check: KeyError"
    assert results["f"].verdict is Verdict.FAIL
    assert len(results["f"].evidence) == EVIDENCE_MAX
    assert "\n" not in results["f"].evidence  # one line


def test_steps_are_the_checklist_in_order() -> None:
    from commands.incidents.models import CHECKLIST  # noqa: PLC0415

    assert tuple(key for key, _ in CHECKLIST) == STEPS


def test_dns_lines_say_answers_time_and_failures() -> None:
    ok = Lookup("app.dhanam.io", LookupKind.OK, ("198.51.100.7",), "d1.cloudfront.net", 2.4)
    assert _lookup_line(ok) == "app.dhanam.io → 198.51.100.7 via d1.cloudfront.net (2 ms)"
    gone = Lookup("api.dhanam.io", LookupKind.NXDOMAIN, ms=1.0, detail="NXDOMAIN")
    assert _lookup_line(gone) == "api.dhanam.io: nxdomain (NXDOMAIN, 1 ms)"
    slow = Lookup("api.dhanam.io", LookupKind.TIMEOUT, ms=500.0, detail="0.5 s")
    assert _lookup_line(slow) == "api.dhanam.io: no answer in 0.5 s"


def test_top_messages_fold_digits_and_read_json() -> None:
    lines = [
        '{"level":"error","msg":"belvo sync timeout after 30000 ms"}',
        '{"level":"error","msg":"belvo sync timeout after 29000 ms"}',
        "ERROR upstream <!channel> timeout",
    ]
    top = _top(lines)
    assert top.startswith("“belvo sync timeout after 30000 ms” 2 times")
    assert "&lt;!channel&gt;" in top  # inert
