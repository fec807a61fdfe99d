"""The checklist's check engine: all at once, each under its limit, one failure never hiding
the others; and the pure parts of the checks (DNS lines, the logs' top messages)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from commands.incidents.checklist_render import checklist_block_id, checklist_blocks, shown_ticks
from commands.incidents.checklist_store import Diagnosis
from commands.incidents.models import BOT, Check, Incident
from commands.outage.engine import EVIDENCE_MAX, run_checks
from commands.outage.models import STEPS, CheckResult, Finding, Verdict
from commands.outage.service_checks import _lookup_line, _top
from commands.requests import IncidentState, Severity
from core.clock import ManualClock
from core.errors import ChatOpsError
from core.masking import mask_lines
from integrations.dns import Lookup, LookupKind
from sandbox.block_kit import check_blocks


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


def test_top_messages_mask_secrets_a_json_escape_hid_from_the_raw_line() -> None:
    """Gson writes `=` as \\u003d: the raw line shows no `password=`, its msg does."""
    lines = mask_lines(
        [
            r'{"level":"error","msg":"db connect failed password\u003dhunter2secret"}',
            r'{"level":"error","msg":"auth: Authorization: Bearer\u0020abcdef0123456789xyz"}',
        ]
    )
    top = _top(lines)
    assert "hunter2secret" not in top
    assert "abcdef0123456789xyz" not in top
    assert "db connect failed password=" in top  # the message is still read and shown


def _diagnosis(evidence: str) -> Diagnosis:
    now = datetime(2026, 12, 5, 22, 0, tzinfo=UTC)
    results = {
        step: CheckResult(step=step, verdict=verdict, evidence=evidence, checked_at=now, ms=12.0)
        for step, verdict in zip(STEPS, [*Verdict, *Verdict], strict=False)
    }
    return Diagnosis(results=results, run_by="U0BOB", run_at=now, run_ms=1234.0)


def test_the_checklist_with_results_fits_slacks_limits_and_says_who_ticked() -> None:
    now = datetime(2026, 12, 5, 22, 0, tzinfo=UTC)
    incident = Incident(
        id="inc-1",
        severity=Severity.SEV1,
        title="down",
        commander="U0ALICE",
        declared_by="U0ALICE",
        started_at=now,
        channel="C1",
        checklist_ts="1.2",
        last_update_at=now,
        checks={"dns": Check(by=BOT, at=now), "ecs": Check(by="U0CAROL", at=now)},
    )
    blocks = checklist_blocks(incident, _diagnosis("x" * EVIDENCE_MAX))
    check_blocks(blocks)  # every text within Slack's limits, valid Block Kit
    text = str(blocks)
    assert "2 of 7 done · checked" in text
    assert "in 1.2 s (re-check by <@U0BOB>)" in text
    assert "✓ *1. Check the AWS service health dashboard*" in text
    assert "✗ *2. Verify DNS resolution*" in text
    assert "? *3." in text
    assert "\u2013 *4." in text
    assert "Verify DNS resolution — checked by dhanam" in text
    assert "Review ECS service status — <@U0CAROL>" in text
    labels = [b["text"]["text"] for b in blocks if b.get("accessory")]
    assert len(labels) == 1
    assert labels[0].startswith("? *7. Activate the DR region")  # the DR step has the button
    resolved = incident.model_copy(update={"status": IncidentState.RESOLVED})
    assert "Activate DR" not in str(checklist_blocks(resolved, _diagnosis("ok")))
    assert "Re-check" not in str(checklist_blocks(resolved, _diagnosis("ok")))
    assert "Re-check" not in str(checklist_blocks(incident, None))  # no [outage]: by hand


def test_a_clicks_shown_ticks_come_from_its_block_id_else_from_the_clicked_message() -> None:
    ticked = {"dns", "dr_region"}
    block_id = checklist_block_id(ticked)
    assert shown_ticks({"block_id": block_id}, {}) == ticked
    assert shown_ticks({"block_id": checklist_block_id([])}, {}) == set()
    # A message posted before block_ids named the ticks: its checkboxes' initial_options.
    message = {
        "blocks": [
            {
                "type": "actions",
                "block_id": "incident_checklist",
                "elements": [
                    {
                        "type": "checkboxes",
                        "action_id": "incident_checklist",
                        "initial_options": [{"value": "ecs"}],
                    }
                ],
            }
        ]
    }
    action = {"block_id": "incident_checklist", "action_id": "incident_checklist"}
    assert shown_ticks(action, {"message": message}) == {"ecs"}
    assert shown_ticks(action, {}) is None
    assert shown_ticks({"block_id": "incident_checklist.zz"}, {}) is None


def test_the_rendered_block_id_names_the_ticks_the_view_shows() -> None:
    at = datetime(2026, 12, 5, 22, 0, tzinfo=UTC)
    incident = Incident(
        id="inc-1",
        severity=Severity.SEV1,
        title="down",
        commander="U0ALICE",
        declared_by="U0ALICE",
        started_at=at,
        channel="C1",
        checklist_ts="1.2",
        last_update_at=at,
        checks={"ecs": Check(by=BOT, at=at), "dr_region": Check(by="U0CAROL", at=at)},
    )
    actions = next(b for b in checklist_blocks(incident) if b["type"] == "actions")
    assert shown_ticks({"block_id": actions["block_id"]}, {}) == {"ecs", "dr_region"}
