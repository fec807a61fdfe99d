"""`dhanam-bot sandbox --script examples/incident.txt`: an incident end to end in a subprocess."""

from __future__ import annotations

from tests.integration.test_sandbox_script import ROOT, sandbox


def test_incident_script_declares_runs_and_resolves() -> None:
    result = sandbox(ROOT / "examples" / "incident.txt")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout.replace("\n│ ", " ")
    assert "+ channel #inc-" in out
    assert "-api-returning-5xx created" in out
    assert "+ message pinned in #inc-" in out
    assert "Total System Outage checklist — 0 of 7 done" in out
    assert "PagerDuty: triggered · open in PagerDuty" in out
    assert "works inside an incident channel, and #ops is not one" in out
    assert "alice in #inc-" in out  # :in found the channel created during the session
    assert "@bob is now the incident commander" in out
    assert "Timeline of inc-" in out
    assert "resolved after" in out
    assert "Traceback" not in out + result.stderr
