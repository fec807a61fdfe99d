"""Run the checklist's checks: all at once, each under its own time limit.

A check that does not answer within the limit is "unknown — no answer in N s"; one that
raises is "unknown" with the reason (a ChatOpsError's message, else the exception's type), and
never hides the others: every step gets a result, whatever the others do. The whole run takes
about as long as the slowest check, never much longer than the limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import structlog

from commands.outage.models import Check, CheckResult, Finding, Verdict
from core.clock import Clock
from core.errors import ChatOpsError
from core.text import inert

log = structlog.get_logger(__name__)
EVIDENCE_MAX = 600  # characters of one step's evidence line


async def _one(step: str, check: Check, limit: float, clock: Clock) -> CheckResult:
    started = time.perf_counter()
    try:
        finding = await asyncio.wait_for(check(), limit)
    except TimeoutError:
        finding = Finding(Verdict.UNKNOWN, f"no answer in {limit:g} s")
    except ChatOpsError as exc:
        finding = Finding(Verdict.UNKNOWN, f"could not check: {inert(exc.user_message)}")
    except Exception as exc:  # one check's failure must not hide the others
        log.warning("outage.check_failed", step=step, exc_info=exc)
        finding = Finding(Verdict.UNKNOWN, f"could not check: {type(exc).__name__}")
    ms = round((time.perf_counter() - started) * 1000, 1)
    evidence = " ".join(finding.evidence.split())
    if len(evidence) > EVIDENCE_MAX:
        evidence = evidence[: EVIDENCE_MAX - 1] + "…"
    log.info("outage.checked", step=step, verdict=finding.verdict.value, ms=ms)
    return CheckResult(
        step=step, verdict=finding.verdict, evidence=evidence, checked_at=clock.now(), ms=ms
    )


async def run_checks(
    checks: Mapping[str, Check], limit: float, clock: Clock
) -> dict[str, CheckResult]:
    """Every check at once; their results by step, in the order given."""
    results = await asyncio.gather(
        *(_one(step, check, limit, clock) for step, check in checks.items())
    )
    return {result.step: result for result in results}
